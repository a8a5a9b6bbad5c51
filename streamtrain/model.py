"""The linear model both learners produce, and its file format.

A :class:`LinearModel` predicts ``y = weights . x + bias``. The online
learner and the batch job both write it as a ``streamtrain.model``
artifact (see :mod:`streamtrain.artifact`), payload::

    {
      "weights": [float, ...],     # one per feature
      "bias": float,
      "samples": int,              # samples the model was trained on
      "method": str,               # e.g. "sgd", "rls", "lstsq-qr"
      "metadata": {...}            # producer-specific, free-form JSON
    }
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from streamtrain import artifact
from streamtrain.errors import ArtifactError

MODEL_FORMAT = "streamtrain.model"
MODEL_VERSION = 1


@dataclass(frozen=True)
class LinearModel:
    """A trained linear model; ``weights`` is a float64 vector."""

    weights: np.ndarray
    bias: float
    samples: int = 0
    method: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights.shape[0])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions for the rows of ``X`` (or one vector)."""
        return np.asarray(X, dtype=np.float64) @ self.weights + self.bias

    def mse(self, X: np.ndarray, y: np.ndarray) -> float:
        """Mean squared error on ``(X, y)``; NaN for no rows."""
        if len(y) == 0:
            return float("nan")
        residual = self.predict(X) - np.asarray(y, dtype=np.float64)
        return float(residual @ residual / len(y))

    def to_payload(self) -> dict[str, Any]:
        return {
            "weights": [float(w) for w in self.weights],
            "bias": float(self.bias),
            "samples": int(self.samples),
            "method": self.method,
            "metadata": self.metadata,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], *, source: str = "model") -> "LinearModel":
        try:
            weights = np.array(payload["weights"], dtype=np.float64)
            return cls(weights, float(payload["bias"]), int(payload["samples"]),
                       str(payload["method"]), dict(payload.get("metadata", {})))
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"{source} does not hold a valid model: {error!r}") from None


def write_model(path: Path, model: LinearModel) -> None:
    """Write ``model`` atomically as a ``streamtrain.model`` artifact."""
    artifact.write(Path(path), MODEL_FORMAT, MODEL_VERSION, model.to_payload())


def read_model(path: Path) -> LinearModel:
    """Read and verify a model file.

    :raises ArtifactError: if it is missing, damaged or not a model.
    """
    payload = artifact.read(Path(path), MODEL_FORMAT, MODEL_VERSION)
    return LinearModel.from_payload(payload, source=str(path))
