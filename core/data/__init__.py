"""The data the models learn from and recommend: the 29 categories, the Madrid catalogue,
versioned datasets (ingest, validation, storage), the synthetic user generator, splits.
"""
