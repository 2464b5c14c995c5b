"""The Planwise model-management core: registry, artifacts, datasets, models, drift.

Interfaces (the dashboard, the worker, the API and the CLI) import this package; it imports
none of them.
"""
