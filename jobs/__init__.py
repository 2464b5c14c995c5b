"""The scheduler worker: ``python -m jobs.worker``.

:mod:`jobs.worker` is the process (database wait, the single-leader lock, the APScheduler
scheduler, signals); :mod:`jobs.tasks` holds the jobs it runs, module-level functions that
APScheduler calls by reference with plain ids. Everything they do goes through ``core``.
"""
