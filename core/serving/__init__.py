"""The request path: a version's category scores for a rating vector (predict) and the
Planwise ranking of places with its compiled kernel. No TensorFlow on import.
"""
