"""Progress for long runs: a bar on a terminal, periodic log lines otherwise,
and the periodic rewrite of the truth file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TextIO

from tqdm import tqdm

from producer.publisher import RunStats
from producer.synthetic import SyntheticStream
from producer.truth import write_truth
from streamtrain.errors import ConfigError

log = logging.getLogger(__name__)


class ProgressBar:
    """A tqdm bar of samples sent (total known when ``--count`` is set)."""

    def __init__(self, total: int | None, stream: TextIO) -> None:
        self._bar = tqdm(total=total or None, unit="msg", file=stream, dynamic_ncols=True)
        self._shown = 0

    def update(self, stats: RunStats) -> None:
        self._bar.update(stats.sent - self._shown)
        self._shown = stats.sent
        self._bar.set_postfix(acked=stats.acked, refresh=False)

    def close(self, stats: RunStats) -> None:
        self.update(stats)
        self._bar.close()


class ProgressLog:
    """An INFO line every ``interval_s`` seconds: sent, acked, rate."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last = (clock(), 0)

    def update(self, stats: RunStats) -> None:
        now = self._clock()
        then, sent_then = self._last
        if now - then < self._interval:
            return
        rate = (stats.sent - sent_then) / (now - then)
        log.info(
            "topic=%s sent=%d acked=%d errors=%d skipped_rows=%d rate=%.0f/s",
            stats.topic, stats.sent, stats.acked, stats.delivery_errors,
            stats.skipped_rows, rate,
        )
        self._last = (now, stats.sent)

    def close(self, stats: RunStats) -> None:
        """The final report is printed by the command line, not here."""


class TruthWriter:
    """Rewrites the truth file every ``interval_s`` seconds and at the end,
    with the segments of every sample sent so far."""

    def __init__(
        self, stream: SyntheticStream, path: Path, interval_s: float, clock: Callable[[], float]
    ) -> None:
        self._stream = stream
        self._path = Path(path)
        self._interval = interval_s
        self._clock = clock
        self._last = clock()
        try:
            self.write(0)
        except OSError as error:
            raise ConfigError(f"cannot write --truth-file {path}: {error.strerror}") from None

    def write(self, samples: int) -> None:
        write_truth(self._path, self._stream.truth(samples))

    def update(self, stats: RunStats) -> None:
        if self._clock() - self._last >= self._interval:
            self._write_logged(stats.sent)
            self._last = self._clock()

    def close(self, stats: RunStats) -> None:
        if self._write_logged(stats.sent):
            log.info("truth written to %s (samples=%d)", self._path, stats.sent)

    def _write_logged(self, samples: int) -> bool:
        """Write; a failure is logged, since publishing goes on regardless."""
        try:
            self.write(samples)
        except OSError as error:
            log.error("cannot write truth file %s: %s", self._path, error)
            return False
        return True


def describe(stats: RunStats) -> str:
    """The one-line human report printed on stderr at exit."""
    text = (
        f"producer: topic {stats.topic}: sent {stats.sent}, acknowledged {stats.acked}, "
        f"failed {stats.failed}, skipped rows {stats.skipped_rows} in "
        f"{stats.duration_s:.1f} s ({_rate(stats):.0f} msg/s); stopped by {stats.stopped_by}"
    )
    if stats.failed:
        text += (
            f"\nproducer: ERROR: {stats.failed} of {stats.sent} samples were NOT delivered"
            f" (first error: {stats.first_error or 'not confirmed before the flush timeout'})"
        )
    return text


def _rate(stats: RunStats) -> float:
    return stats.sent / stats.duration_s if stats.duration_s > 0 else 0.0
