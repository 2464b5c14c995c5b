"""Definitions every reader of a figure shares: which way a metric improves (direction) and
the label-free recommendation health metrics (health). Free of the database.
"""
