"""Training and evaluation on the replayed statistics (no second replay).

:func:`fit` solves least squares exactly (streamed QR, see
:mod:`streamtrain.leastsquares`) or runs full-batch gradient descent on the
same statistics. :func:`evaluate` states the batch model's MSE and the
online model's MSE on the same replayed samples, both computed from the R
factor as ``|R [w, b, -1]|^2 / n``; they agree with a direct pass over the
data to a relative 1e-9 or better on the test data (see
``tests/unit/test_leastsquares.py``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from batch_job.settings import BatchSettings, Method
from streamtrain.errors import ArtifactError
from streamtrain.leastsquares import QRAccumulator, Solution, gradient_descent
from streamtrain.model import LinearModel, read_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    """MSEs on the replayed data; None where not computable.

    ``online_weights_distance`` is the L2 distance between the online and
    batch parameter vectors (weights and bias together).
    """

    mse: float | None
    online_mse: float | None
    online_weights_distance: float | None

    @property
    def gap(self) -> float | None:
        """Online MSE minus batch MSE."""
        if self.mse is None or self.online_mse is None:
            return None
        return self.online_mse - self.mse


def fit(acc: QRAccumulator, settings: BatchSettings) -> Solution:
    """Train with the configured method on the accumulated samples."""
    if settings.method is Method.GD:
        return gradient_descent(
            acc.gram(), acc.rows, steps=settings.gd_steps,
            learning_rate=settings.gd_learning_rate, ridge=settings.ridge,
        )
    return acc.solve(ridge=settings.ridge)


def load_online_model(path: str | None, dim: int) -> LinearModel | None:
    """The online learner's model, or None.

    A missing file is normal (the learner has not written one yet) and
    logged at INFO; a damaged file or one of another dimension is logged
    as a WARNING; both give None, never an error.
    """
    if path is None:
        return None
    if not Path(path).exists():
        log.info("no online model at %s: no online MSE this run", path)
        return None
    try:
        model = read_model(Path(path))
    except ArtifactError as error:
        log.warning("online model ignored: %s", error)
        return None
    if model.dim != dim:
        log.warning("online model %s has %d weights, expected %d: ignored", path, model.dim, dim)
        return None
    return model


def evaluate(acc: QRAccumulator, solution: Solution, online: LinearModel | None) -> Evaluation:
    """Batch and online MSE on the accumulated samples, and their distance."""
    mse = _finite(acc.mse(solution.weights, solution.bias))
    if online is None:
        return Evaluation(mse, None, None)
    online_mse = _finite(acc.mse(online.weights, online.bias))
    difference = np.append(online.weights - solution.weights, online.bias - solution.bias)
    return Evaluation(mse, online_mse, _finite(float(np.linalg.norm(difference))))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
