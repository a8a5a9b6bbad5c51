"""Synthetic samples ``y = w . x + b + noise`` with optional concept drift.

Usable as a library: tests and benchmarks compute the exact samples the
producer publishes without Kafka::

    stream = SyntheticStream(dim=10, seed=7, drift="abrupt", drift_at=500)
    X, y = stream.next_block(1000)      # samples 0..999
    truth = stream.truth(samples=1000)  # the document the truth file holds

Guarantees:

- The sample sequence depends only on the parameters, never on how it is
  cut into blocks: samples are drawn in fixed chunks of :data:`CHUNK` rows,
  chunk ``j`` from its own generator seeded by ``(seed, j)``, and each
  target is computed inside its chunk with the same operations whatever
  block was asked for. Equal parameters give equal float64 bits.
- The initial weights and bias are drawn from N(0, 1). Abrupt drift adds
  N(0, drift_scale²) to each weight and to the bias from sample
  ``drift_at`` on. Gradual drift is a random walk that steps every
  ``truth_every`` samples by N(0, drift_scale² · truth_every / 10,000)
  per coordinate, so ``drift_scale`` is the standard deviation of the
  change accumulated over 10,000 samples whatever the step length.
- Features are N(0, 1) or uniform on [-√3, √3] (unit variance too); the
  noise is N(0, noise²).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from producer import truth as truth_module
from producer.truth import Segment

CHUNK = 1024
"""Samples drawn together from one generator; fixed so blocks never matter."""

_WEIGHTS_KEY = 0
_CHUNK_KEY = 1
_WALK_KEY = 2
_WALK_REFERENCE = 10_000
_UNIFORM_HALF_WIDTH = math.sqrt(3.0)


class SyntheticStream:
    """A deterministic, endless sequence of linear-regression samples."""

    def __init__(
        self,
        dim: int,
        seed: int = 0,
        *,
        noise: float = 0.1,
        distribution: str = "normal",
        drift: str = "none",
        drift_at: int = 1000,
        drift_scale: float = 1.0,
        truth_every: int = 100,
    ) -> None:
        _check_parameters(dim, noise, distribution, drift, drift_at, truth_every)
        self.dim = dim
        self.seed = seed
        self.noise = float(noise)
        self.distribution = _plain(distribution)
        self.drift = _plain(drift)
        self.drift_at = drift_at
        self.drift_scale = float(drift_scale)
        self.truth_every = truth_every
        self.position = 0
        self._segments = self._initial_segments()
        self._starts = [segment.start for segment in self._segments]
        self._walk = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_WALK_KEY,)))
        self._cached: tuple[int, np.ndarray, np.ndarray] | None = None

    def next_block(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n`` samples as ``X`` (n × dim) and ``y`` (n)."""
        X, y = self.block(self.position, n)
        self.position += n
        return X, y

    def block(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``start .. start + n - 1``, wherever the stream stands."""
        if start < 0 or n < 0:
            raise ValueError(f"start and n must be >= 0, got start={start} n={n}")
        X_parts, y_parts = [], []
        index, end = start, start + n
        while index < end:
            chunk = index // CHUNK
            X_chunk, y_chunk = self._chunk(chunk)
            lo, hi = index - chunk * CHUNK, min(end - chunk * CHUNK, CHUNK)
            X_parts.append(X_chunk[lo:hi])
            y_parts.append(y_chunk[lo:hi])
            index = chunk * CHUNK + hi
        if not X_parts:
            return np.empty((0, self.dim)), np.empty(0)
        return np.concatenate(X_parts), np.concatenate(y_parts)

    def segments(self, samples: int) -> list[Segment]:
        """The segments that generated samples ``0 .. samples - 1``.

        Abrupt drift lists its second segment even when ``samples`` stops
        before it, so the drift point is known from the start.
        """
        self._extend_segments(samples)
        if self.drift != "gradual":
            return list(self._segments)
        return [s for s in self._segments if s.start < max(samples, 1)]

    def truth(self, samples: int) -> dict[str, Any]:
        """The truth document after ``samples`` samples were published."""
        return {
            "format": truth_module.FORMAT,
            "version": truth_module.VERSION,
            "dim": self.dim,
            "seed": self.seed,
            "noise": self.noise,
            "feature_distribution": self.distribution,
            "drift": self.drift,
            "drift_at": self.drift_at if self.drift == "abrupt" else None,
            "drift_scale": self.drift_scale,
            "truth_every": self.truth_every,
            "samples": samples,
            "segments": [segment.as_json() for segment in self.segments(samples)],
        }

    def _chunk(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Features and targets of chunk ``chunk`` (the last one is cached)."""
        if self._cached is not None and self._cached[0] == chunk:
            return self._cached[1], self._cached[2]
        seed = np.random.SeedSequence(self.seed, spawn_key=(_CHUNK_KEY, chunk))
        rng = np.random.default_rng(seed)
        if self.distribution == "uniform":
            X = rng.uniform(-_UNIFORM_HALF_WIDTH, _UNIFORM_HALF_WIDTH, size=(CHUNK, self.dim))
        else:
            X = rng.standard_normal(size=(CHUNK, self.dim))
        noise = rng.standard_normal(size=CHUNK) * self.noise
        y = self._targets(chunk * CHUNK, X) + noise
        self._cached = (chunk, X, y)
        return X, y

    def _targets(self, first: int, X: np.ndarray) -> np.ndarray:
        """``w . x + b`` for rows ``first, ...``, segment by segment."""
        end = first + X.shape[0]
        self._extend_segments(end)
        y = np.empty(X.shape[0])
        starts = self._starts
        first_k = max(bisect.bisect_right(starts, first) - 1, 0)
        for k in range(first_k, bisect.bisect_left(starts, end)):
            segment = self._segments[k]
            stop = starts[k + 1] if k + 1 < len(starts) else end
            lo, hi = max(segment.start, first), min(stop, end)
            if lo < hi:
                rows = X[lo - first : hi - first]
                y[lo - first : hi - first] = (rows * segment.weights).sum(axis=1) + segment.bias
        return y

    def _initial_segments(self) -> list[Segment]:
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(_WEIGHTS_KEY,)))
        first = Segment(0, rng.standard_normal(self.dim), float(rng.standard_normal()))
        if self.drift != "abrupt":
            return [first]
        change = rng.standard_normal(self.dim + 1) * self.drift_scale
        second = Segment(self.drift_at, first.weights + change[:-1], first.bias + float(change[-1]))
        return [first, second] if self.drift_at > 0 else [second]

    def _extend_segments(self, end: int) -> None:
        """Make gradual drift's walk cover samples up to ``end``."""
        if self.drift != "gradual":
            return
        step = self.drift_scale * math.sqrt(self.truth_every / _WALK_REFERENCE)
        while self._segments[-1].start + self.truth_every < end:
            last = self._segments[-1]
            change = self._walk.standard_normal(self.dim + 1) * step
            start = last.start + self.truth_every
            self._segments.append(
                Segment(start, last.weights + change[:-1], last.bias + float(change[-1]))
            )
            self._starts.append(start)


def _plain(value: Any) -> str:
    """An enum member's value, or the string itself."""
    return str(getattr(value, "value", value))


def _check_parameters(
    dim: int, noise: float, distribution: Any, drift: Any, drift_at: int, truth_every: int
) -> None:
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if _plain(distribution) not in ("normal", "uniform"):
        raise ValueError(f"distribution must be normal or uniform, got {distribution!r}")
    if _plain(drift) not in ("none", "abrupt", "gradual"):
        raise ValueError(f"drift must be none, abrupt or gradual, got {drift!r}")
    if drift_at < 0 or truth_every < 1:
        raise ValueError(
            f"drift_at must be >= 0 and truth_every >= 1, got {drift_at} and {truth_every}"
        )
