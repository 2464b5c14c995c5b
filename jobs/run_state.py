"""A training run as the worker executes it: its pending log lines, its progress and whether
it must stop, and the handler that copies a training thread's log records into its run."""

from __future__ import annotations

import logging
import threading
import time

from core.db import utcnow
from core.retraining.runs import RunInfo

PROGRESS_EVERY_S = 2.0


class RunCancelled(Exception):
    """Raised inside a training (from its progress callback) to stop it."""


class RunState:
    """A run this worker is executing: its pending log lines and whether it must stop."""

    def __init__(self, run: RunInfo) -> None:
        self.run_id = run.id
        self.model = run.model
        self.cancel_reason: str | None = None
        self.done = False
        # Held while log lines move to the database, so the heartbeat and the final record
        # never interleave (lines would be lost or doubled).
        self.flush_lock = threading.Lock()
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._last: tuple[int, str, float] = (-1, "", 0.0)

    def write(self, line: str) -> None:
        with self._lock:
            self._lines.append(f"[{utcnow():%H:%M:%S}] {line.rstrip()}\n")

    def take(self) -> str:
        with self._lock:
            text, self._lines = "".join(self._lines), []
        return text

    def unshift(self, text: str) -> None:
        """Put back lines that could not be saved."""
        if text:
            with self._lock:
                self._lines.insert(0, text)

    def cancel(self, reason: str) -> None:
        if self.cancel_reason is None:
            self.cancel_reason = reason

    def progress(self, fraction: float, message: str = "") -> None:
        """The training's progress callback: logs (throttled) and stops a cancelled run."""
        if self.cancel_reason is not None:
            raise RunCancelled(self.cancel_reason)
        percent = round(max(0.0, min(1.0, float(fraction))) * 100)
        now = time.monotonic()
        last_percent, last_message, last_time = self._last
        # A new step ("evaluating ...") is always logged; repeats of one step ("epoch 7/50",
        # "epoch 8/50") at most every PROGRESS_EVERY_S, so a long training stays readable.
        same_step = message.split(" ", 1)[0] == last_message.split(" ", 1)[0]
        if (
            not same_step
            or (percent == 100 and last_percent != 100)
            or (message != last_message and now - last_time >= PROGRESS_EVERY_S)
        ):
            self._last = (percent, message, now)
            self.write(f"{percent:3d}% {message}")


class RunLogHandler(logging.Handler):
    """Copies the log records of a training thread into its run's log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self._runs: dict[int, RunState] = {}

    def attach(self, state: RunState) -> None:
        self._runs[threading.get_ident()] = state

    def detach(self) -> None:
        self._runs.pop(threading.get_ident(), None)

    def emit(self, record: logging.LogRecord) -> None:
        state = self._runs.get(record.thread or 0)
        if state is not None:
            try:
                state.write(self.format(record))
            except Exception:  # noqa: BLE001 - logging must never break a training
                self.handleError(record)


RUN_LOGS = RunLogHandler()
