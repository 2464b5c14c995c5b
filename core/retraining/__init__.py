"""Retraining as data arrives: schedules (cron), the queue with its drift trigger and
cooldown, the promotion policies applied after a run, run records and the worker's lease.
"""
