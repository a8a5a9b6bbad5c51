"""The true weights behind synthetic samples, and the file that records them.

A truth document is one JSON object::

    {
      "format": "streamtrain.truth", "version": 1,
      "dim": 10, "seed": 0, "noise": 0.1, "feature_distribution": "normal",
      "drift": "abrupt", "drift_at": 5000, "drift_scale": 1.0, "truth_every": 100,
      "samples": 20000,
      "segments": [
        {"from": 0, "weights": [...], "bias": 0.3},
        {"from": 5000, "weights": [...], "bias": -0.2}
      ]
    }

Sample ``i`` was generated as ``y = weights . x + bias + noise`` with the
weights of the last segment whose ``from`` is at most ``i``
(:func:`weights_at`). ``samples`` is how many samples had been published
when the file was written. The segments are exact, not an approximation:
gradual drift changes the weights only at segment boundaries.

:func:`write_truth` is atomic: a reader sees the previous document or the
new one, never a mix. Floats are written with Python's shortest round-trip
representation, so reading gives back the exact float64 weights.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain.artifact import write_atomic
from streamtrain.errors import ArtifactError

FORMAT = "streamtrain.truth"
VERSION = 1


@dataclass(frozen=True)
class Segment:
    """Weights in force from sample index ``start`` until the next segment."""

    start: int
    weights: np.ndarray
    bias: float

    def as_json(self) -> dict[str, Any]:
        return {"from": self.start, "weights": self.weights.tolist(), "bias": self.bias}


def weights_at(truth: dict[str, Any], index: int) -> tuple[np.ndarray, float]:
    """The true ``(weights, bias)`` that generated sample ``index`` (0-based).

    :param truth: a truth document, as returned by :func:`read_truth`.
    :raises ValueError: if ``index`` is negative.
    """
    if index < 0:
        raise ValueError(f"sample index must be >= 0, got {index}")
    segments = truth["segments"]
    starts = [segment["from"] for segment in segments]
    segment = segments[max(bisect.bisect_right(starts, index) - 1, 0)]
    return np.asarray(segment["weights"], dtype=np.float64), float(segment["bias"])


def write_truth(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` atomically (write, fsync, rename)."""
    write_atomic(Path(path), (json.dumps(document, indent=1, allow_nan=False) + "\n").encode())


def read_truth(path: Path) -> dict[str, Any]:
    """Read a truth document.

    :raises ArtifactError: if the file is missing, not JSON or not a truth
        document of this version.
    """
    try:
        document = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise ArtifactError(f"cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise ArtifactError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not a truth file (format {FORMAT!r} expected)")
    if document.get("version") != VERSION:
        raise ArtifactError(
            f"{path} has version {document.get('version')!r}, this reader knows {VERSION}"
        )
    return document
