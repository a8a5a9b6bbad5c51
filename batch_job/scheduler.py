"""Running the batch job on its own schedule, one run at a time.

Runs never overlap: the scheduler runs a job, waits for it to end, then
computes the next due time. A run that overruns its slot skips the slots
it missed (no catch-up burst). ``every`` runs immediately and then every
interval after the first run's due time; ``cron`` runs at the times of a
cron expression (evaluated in UTC, with croniter) and waits for the first.

Stopping: :meth:`Scheduler.stop` (wired to SIGTERM and SIGINT by the
command line) ends the wait at once; a run in progress finishes (its model
is published or its failure reported) and then the loop returns.

The clock and the wait are injected, so tests drive the loop in-process
without sleeping.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import Callable, Protocol

from croniter import croniter

log = logging.getLogger(__name__)


class Plan(Protocol):
    def next_due(self, now: float, previous_due: float | None) -> float:
        """The next due time (Unix seconds) after a run that was due at
        ``previous_due`` (None before the first run)."""


class Every:
    """Every ``interval_s`` seconds, the first run at once."""

    def __init__(self, interval_s: float) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval_s}")
        self.interval_s = interval_s

    def next_due(self, now: float, previous_due: float | None) -> float:
        if previous_due is None:
            return now
        missed = max(0, math.floor((now - previous_due) / self.interval_s))
        return previous_due + (missed + 1) * self.interval_s

    def __str__(self) -> str:
        return f"every {self.interval_s:g}s"


class Cron:
    """At the times of a cron expression, in UTC."""

    def __init__(self, expression: str) -> None:
        if not croniter.is_valid(expression):
            raise ValueError(f"cron expression {expression!r} is not valid")
        self.expression = expression

    def next_due(self, now: float, previous_due: float | None) -> float:
        start = datetime.fromtimestamp(now, timezone.utc)
        return float(croniter(self.expression, start).get_next(float))

    def __str__(self) -> str:
        return f"cron {self.expression!r} (UTC)"


class Scheduler:
    """Call ``job`` on ``plan`` until stopped.

    :param job: one run; returns True on success. Exceptions are logged
        and count as failures; the schedule goes on.
    :param clock: Unix time now.
    :param wait: sleep up to the given seconds; return True if a stop was
        requested (default: wait on the scheduler's stop event).
    """

    def __init__(
        self,
        job: Callable[[], bool],
        plan: Plan,
        *,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.job = job
        self.plan = plan
        self.clock = clock
        self._stop = threading.Event()
        self.wait = wait or self._stop.wait
        self.runs = 0
        self.failures = 0

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, max_runs: int | None = None) -> int:
        """Loop until stopped (or ``max_runs`` runs); return the runs made."""
        log.info("scheduler started: %s", self.plan)
        due: float | None = None
        while not self.stopping and (max_runs is None or self.runs < max_runs):
            due = self.plan.next_due(self.clock(), due)
            if not self._wait_until(due):
                break
            self._run_one()
        log.info("scheduler stopped after %d runs (%d failed)", self.runs, self.failures)
        return self.runs

    def _wait_until(self, due: float) -> bool:
        """Wait for ``due``; False if stopped first."""
        log.info("next run due at %s", datetime.fromtimestamp(due, timezone.utc).isoformat())
        while (remaining := due - self.clock()) > 0:
            if self.wait(remaining) or self.stopping:
                return False
        return not self.stopping

    def _run_one(self) -> None:
        self.runs += 1
        try:
            ok = self.job()
        except Exception:
            log.exception("scheduled run %d failed", self.runs)
            ok = False
        if not ok:
            self.failures += 1
