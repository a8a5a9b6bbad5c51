"""Online learners of a linear model ``y = w . x + b``, one sample at a time.

Every learner follows the same protocol, *test then train*: for a sample
``(x, y)`` it predicts with the current model, records the squared error
of that prediction (the honest, prequential loss), then updates. A sample
whose prediction, error or update is not finite is refused with
:class:`NonFiniteUpdate` and leaves every bit of the learner as it was.
"Not finite" includes a new model whose squared norm ``|w|^2 + b^2``
overflows float64: such a model would make every later prediction
overflow, so one huge but finite sample cannot poison the learner.

Learners
--------
``sgd``
    Plain stochastic gradient descent on the squared error, with the
    textbook step ``theta <- theta - eta * 2 * z * (z . theta - y)`` where
    ``z = (x, 1)`` and ``theta = (w, b)``.
``adagrad``
    The same gradient, scaled per coordinate:
    ``G += g * g``, ``theta <- theta - eta * g / (sqrt(G) + 1e-8)``.
``rls``
    Recursive least squares with forgetting factor ``lambda`` and initial
    inverse covariance ``P0 = I / delta``. After ``n`` samples ``theta``
    minimizes ``sum_i lambda^(n-i) (z_i . theta - y_i)^2
    + lambda^n delta |theta|^2``: with ``lambda = 1`` it is ridge regression
    with penalty ``delta`` on weights *and* bias, which tends to batch least
    squares as ``delta`` tends to zero.

Options of ``sgd`` and ``adagrad``:

- schedule ``constant`` (``eta = learning_rate``) or ``invscaling``
  (``eta = learning_rate / t ** power_t``, ``t`` the 1-based number of the
  update; the step count is part of the saved state, so a resumed learner
  continues its schedule).
- ``l2``: adds ``l2 / 2 * |w|^2`` to the loss (gradient ``l2 * w``); the
  bias is not penalized.
- ``clip_norm``: the gradient ``g = (2 e x + l2 w, 2 e)`` is rescaled to
  this Euclidean norm when it is longer, so one outlier moves the model by
  at most ``eta * clip_norm``.

State
-----
:meth:`Learner.to_payload` gives the whole state as plain JSON values
(weights, bias, optimizer state including step counts, loss statistics,
settings); :func:`learner_from_payload` rebuilds a learner that continues
bit for bit. Floats survive a JSON round trip exactly (shortest repr).

Batches: :meth:`Learner.learn_many` applies rows one at a time, in
order, exactly as that many calls of :meth:`Learner.learn` would (bit for
bit), and times each row; the consumer learns through it.

Speed: ``sgd`` and ``adagrad`` work on plain Python floats (rows are given
as lists, see :meth:`Learner.rows`), which beats numpy's per-call overhead
for the small dimensions this project uses; their cost grows linearly with
the dimension. ``sgd`` runs a whole batch in one loop that keeps the model
in local variables; its :meth:`~Learner.learn` repeats the same arithmetic
for one sample (a unit test holds the two to the same bits).
``rls`` uses numpy and costs ``O(dim^2)`` per sample.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from operator import mul
from typing import Any

import numpy as np

from streamtrain.errors import ConfigError, StreamtrainError

KINDS = ("sgd", "adagrad", "rls")
SCHEDULES = ("constant", "invscaling")
SMOOTHING = 0.01
"""Weight of the newest squared error in the smoothed loss (about the last
100 samples)."""
ADAGRAD_EPSILON = 1e-8
STATE_VERSION = 1


class NonFiniteUpdate(StreamtrainError):
    """A sample would make the prediction or the model non-finite; the
    learner is unchanged. ``reason`` is ``non_finite_update``."""

    reason = "non_finite_update"


@dataclass(frozen=True)
class LearnerConfig:
    """Settings of a learner; saved with its state."""

    kind: str = "sgd"
    learning_rate: float = 0.01
    schedule: str = "constant"
    power_t: float = 0.25
    l2: float = 0.0
    clip_norm: float = 0.0
    forgetting_factor: float = 1.0
    rls_delta: float = 1e-3

    def __post_init__(self) -> None:
        _check(self.kind in KINDS, "learner", self.kind, f"one of {KINDS}")
        _check(self.schedule in SCHEDULES, "schedule", self.schedule, f"one of {SCHEDULES}")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "> 0")
        _check(self.power_t >= 0, "power_t", self.power_t, ">= 0")
        _check(self.l2 >= 0, "l2", self.l2, ">= 0")
        _check(self.clip_norm >= 0, "clip_norm", self.clip_norm, ">= 0 (0 means no clip)")
        _check(0 < self.forgetting_factor <= 1, "forgetting_factor",
               self.forgetting_factor, "in (0, 1]")
        _check(self.rls_delta > 0, "rls_delta", self.rls_delta, "> 0")

    def to_payload(self) -> dict[str, Any]:
        return asdict(self)

    def relevant(self) -> dict[str, Any]:
        """The settings that change what this kind of learner computes."""
        if self.kind == "rls":
            keys = ("kind", "forgetting_factor", "rls_delta")
        else:
            keys = ("kind", "learning_rate", "schedule", "power_t", "l2", "clip_norm")
        return {key: getattr(self, key) for key in keys}


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"{name} is {value!r}, expected {expected}")


@dataclass
class LearnedBatch:
    """What :meth:`Learner.learn_many` did with a batch of rows.

    ``stamps`` holds a clock reading before the first row and one after
    each row (applied or not), so row ``i`` took
    ``stamps[i + 1] - stamps[i]``; ``rejected`` lists the position of each
    refused row with the reason.
    """

    applied: int = 0
    squared_error: float = 0.0
    """Sum of the prequential squared errors of the applied rows."""
    rejected: list[tuple[int, NonFiniteUpdate]] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)

    def durations(self) -> np.ndarray:
        """Seconds taken by each applied row, in row order."""
        durations = np.diff(np.asarray(self.stamps, dtype=np.float64))
        if self.rejected:
            durations = np.delete(durations, [position for position, _ in self.rejected])
        return durations


class Learner:
    """Common state and bookkeeping of every learner.

    ``samples`` counts the updates applied (refused samples are not
    counted); ``squared_error_sum`` is the sum of their prequential squared
    errors and ``loss_smoothed`` an exponential average of them.
    """

    def __init__(self, config: LearnerConfig, dim: int) -> None:
        if dim < 1:
            raise ConfigError(f"dim is {dim}, expected >= 1")
        self.config = config
        self.dim = dim
        self.samples = 0
        self.squared_error_sum = 0.0
        self.loss_smoothed = 0.0

    # The protocol: subclasses implement learn, coefficients, _state and
    # _load_state, and override rows when another row form is faster.
    def rows(self, X: np.ndarray) -> Sequence:
        """The rows of a decoded batch in the form :meth:`learn` is fastest on."""
        return X.tolist()

    def learn(self, x: Any, y: float) -> float:
        """Predict ``y`` from ``x``, then update; return the squared error.

        :raises NonFiniteUpdate: nothing was changed.
        """
        raise NotImplementedError

    def learn_many(self, rows: Sequence, targets: Sequence[float],
                   clock: Callable[[], float] = time.perf_counter) -> LearnedBatch:
        """:meth:`learn` on each row in order; a refused row changes nothing
        and is reported in ``rejected`` instead of raised. ``clock`` is read
        before the first row and after each one."""
        result = LearnedBatch()
        stamps, rejected, learn = result.stamps, result.rejected, self.learn
        stamp = stamps.append
        stamp(clock())
        for x, y in zip(rows, targets):
            try:
                result.squared_error += learn(x, y)
            except NonFiniteUpdate as error:
                rejected.append((len(stamps) - 1, error))
            stamp(clock())
        result.applied = len(stamps) - 1 - len(rejected)
        return result

    def coefficients(self) -> tuple[list[float], float]:
        """Current weights (a new list) and bias."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def predict(self, x: Sequence[float]) -> float:
        weights, bias = self.coefficients()
        return sum(map(mul, weights, x)) + bias

    def _record(self, squared_error: float) -> None:
        """Count one applied update; the caller checked that the sum stays finite."""
        self.samples += 1
        self.squared_error_sum += squared_error
        if self.samples == 1:
            self.loss_smoothed = squared_error
        else:
            self.loss_smoothed += SMOOTHING * (squared_error - self.loss_smoothed)

    def _check_error(self, error: float) -> float:
        squared = error * error
        if not math.isfinite(squared) or not math.isfinite(self.squared_error_sum + squared):
            raise NonFiniteUpdate(f"prediction error {error!r} is not finite when squared")
        return squared

    def to_payload(self) -> dict[str, Any]:
        """The whole state as plain JSON values."""
        weights, bias = self.coefficients()
        return {
            "version": STATE_VERSION,
            "config": self.config.to_payload(),
            "dim": self.dim,
            "weights": weights,
            "bias": bias,
            "samples": self.samples,
            "squared_error_sum": self.squared_error_sum,
            "loss_smoothed": self.loss_smoothed,
            "optimizer": self._state(),
        }


class SGDLearner(Learner):
    """Stochastic gradient descent (and the base of AdaGrad).

    The update is written as ``w <- a * w - c * x``, ``b <- b - c`` with
    ``c = eta * s * 2 * e`` and ``a = 1 - eta * s * l2`` (``e`` the
    prediction error, ``s <= 1`` the clip scale): the textbook step with one
    multiplication per coordinate.
    """

    def __init__(self, config: LearnerConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.weights = [0.0] * dim
        self.bias = 0.0
        self.step = 0

    def coefficients(self) -> tuple[list[float], float]:
        return list(self.weights), self.bias

    def _eta(self, step: int) -> float:
        config = self.config
        if config.schedule == "constant":
            return config.learning_rate
        return config.learning_rate / step**config.power_t

    def learn(self, x: list[float], y: float) -> float:
        """One sample: one row of :meth:`learn_many`."""
        result = self.learn_many([x], [y], clock=_no_clock)
        if result.rejected:
            raise result.rejected[0][1]
        return result.squared_error

    def learn_many(self, rows: Sequence, targets: Sequence[float],
                   clock: Callable[[], float] = time.perf_counter) -> LearnedBatch:
        """The fused loop: the model lives in local variables for the whole
        batch and is stored back at the end (also when a row is refused,
        which skips that row only). Per row, with ``t`` its 1-based update
        number: predict, check the squared error, ``eta`` (clipped), the
        step, check the new model, commit to the locals."""
        config = self.config
        rate, power, l2, clip = config.learning_rate, config.power_t, config.l2, config.clip_norm
        constant = config.schedule == "constant"
        weights, bias, step = self.weights, self.bias, self.step
        samples, errors_sum, smoothed = self.samples, self.squared_error_sum, self.loss_smoothed
        result = LearnedBatch()
        stamps, rejected, total = result.stamps, result.rejected, 0.0
        stamp, isfinite = stamps.append, math.isfinite
        stamp(clock())
        for x, y in zip(rows, targets):
            # predict, test
            error = sum(map(mul, weights, x)) + bias - y
            squared = error * error
            errors = errors_sum + squared
            if not isfinite(errors):
                rejected.append((len(stamps) - 1, NonFiniteUpdate(
                    f"prediction error {error!r} is not finite when squared")))
                stamp(clock())
                continue

            # train: w <- a * w - c * x, b <- b - c
            eta = rate if constant else rate / (step + 1) ** power
            twice = 2.0 * error
            if clip:
                eta *= _clip_scale(x, twice, weights, l2, clip)
            c = eta * twice
            if l2:
                a = 1.0 - eta * l2
                new = [a * wi - c * xi for wi, xi in zip(weights, x)]
            else:
                new = [wi - c * xi for wi, xi in zip(weights, x)]
            new_bias = bias - c
            if not isfinite(sum(map(mul, new, new)) + new_bias * new_bias):
                rejected.append((len(stamps) - 1, NonFiniteUpdate(
                    f"update of {config.kind} model is not finite")))
                stamp(clock())
                continue

            # commit to the locals
            weights, bias, step = new, new_bias, step + 1
            samples += 1
            errors_sum = errors
            total += squared
            smoothed = squared if samples == 1 else smoothed + SMOOTHING * (squared - smoothed)
            stamp(clock())

        self.weights, self.bias, self.step = weights, bias, step
        self.samples, self.squared_error_sum, self.loss_smoothed = samples, errors_sum, smoothed
        result.applied, result.squared_error = len(stamps) - 1 - len(rejected), total
        return result

    def _state(self) -> dict[str, Any]:
        return {"step": self.step}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])


class AdaGradLearner(SGDLearner):
    """AdaGrad: per-coordinate steps scaled by the accumulated squared gradients."""

    def __init__(self, config: LearnerConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.accumulators = [0.0] * dim
        self.bias_accumulator = 0.0

    learn_many = Learner.learn_many
    """The generic loop over :meth:`learn` (the fused one is sgd's)."""

    def learn(self, x: list[float], y: float) -> float:
        error = sum(map(mul, self.weights, x)) + self.bias - y
        squared = self._check_error(error)
        step = self.step + 1
        grad, grad_bias = self._gradient(x, error)
        sums = [ai + gi * gi for ai, gi in zip(self.accumulators, grad)]
        bias_sum = self.bias_accumulator + grad_bias * grad_bias
        eta, eps = self._eta(step), ADAGRAD_EPSILON
        weights = [wi - eta * gi / (math.sqrt(si) + eps)
                   for wi, gi, si in zip(self.weights, grad, sums)]
        bias = self.bias - eta * grad_bias / (math.sqrt(bias_sum) + eps)
        if not math.isfinite(sum(map(mul, weights, weights)) + bias * bias + sum(sums) + bias_sum):
            raise NonFiniteUpdate("AdaGrad update or accumulators are not finite")

        # commit: nothing above changed the learner
        self.weights, self.bias, self.step = weights, bias, step
        self.accumulators, self.bias_accumulator = sums, bias_sum
        self._record(squared)
        return squared

    def _gradient(self, x: list[float], error: float) -> tuple[list[float], float]:
        """Gradient of the loss at this sample, clipped if configured."""
        twice = 2.0 * error
        l2 = self.config.l2
        if l2:
            grad = [twice * xi + l2 * wi for xi, wi in zip(x, self.weights)]
        else:
            grad = [twice * xi for xi in x]
        clip = self.config.clip_norm
        scale = _clip_scale(x, twice, self.weights, l2, clip) if clip else 1.0
        if scale != 1.0:
            grad = [gi * scale for gi in grad]
            twice *= scale
        return grad, twice

    def _state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "accumulators": list(self.accumulators),
            "bias_accumulator": self.bias_accumulator,
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.accumulators = [float(a) for a in state["accumulators"]]
        self.bias_accumulator = float(state["bias_accumulator"])
        _check(len(self.accumulators) == self.dim, "accumulators",
               len(self.accumulators), f"{self.dim} values")


def _clip_scale(x: list[float], twice: float, weights: list[float], l2: float,
                clip: float) -> float:
    """``min(1, clip / |g|)`` for the gradient ``g = (2e x + l2 w, 2e)``."""
    if l2:
        grad = [twice * xi + l2 * wi for xi, wi in zip(x, weights)]
    else:
        grad = [twice * xi for xi in x]
    norm = math.sqrt(sum(map(mul, grad, grad)) + twice * twice)
    return clip / norm if norm > clip else 1.0


class RLSLearner(Learner):
    """Recursive least squares with a forgetting factor (see the module doc)."""

    def __init__(self, config: LearnerConfig, dim: int) -> None:
        super().__init__(config, dim)
        self.theta = np.zeros(dim + 1)
        self.P = np.eye(dim + 1) / config.rls_delta

    def rows(self, X: np.ndarray) -> Sequence:
        """Rows ``z = (x, 1)``: the bias column is appended once per batch."""
        return np.column_stack([X, np.ones(len(X))])

    def coefficients(self) -> tuple[list[float], float]:
        values = self.theta.tolist()
        return values[:-1], values[-1]

    def learn(self, z: np.ndarray, y: float) -> float:
        """``z`` is a row of :meth:`rows` (or any ``(x, 1)`` vector)."""
        if len(z) == self.dim:
            z = np.append(z, 1.0)
        error = y - float(self.theta @ z)
        squared = self._check_error(error)
        lam = self.config.forgetting_factor
        pz = self.P @ z
        denominator = lam + float(z @ pz)
        gain = pz / denominator
        theta = self.theta + gain * error
        P = self.P - np.multiply.outer(gain, pz)
        if lam != 1.0:
            P /= lam
        if not (denominator > 0 and math.isfinite(float(theta @ theta) + float(P.sum()))):
            raise NonFiniteUpdate("RLS update is not finite")
        self.theta, self.P = theta, P
        self._record(squared)
        return squared

    def _state(self) -> dict[str, Any]:
        return {"P": self.P.tolist()}

    def _load_state(self, state: dict[str, Any]) -> None:
        P = np.array(state["P"], dtype=np.float64)
        _check(P.shape == (self.dim + 1, self.dim + 1), "P shape", P.shape,
               f"({self.dim + 1}, {self.dim + 1})")
        self.P = P


_CLASSES: dict[str, type[Learner]] = {
    "sgd": SGDLearner, "adagrad": AdaGradLearner, "rls": RLSLearner,
}


def _no_clock() -> float:
    return 0.0


def make_learner(config: LearnerConfig, dim: int) -> Learner:
    """A fresh learner: zero weights and bias, no samples."""
    return _CLASSES[config.kind](config, dim)


def learner_from_payload(payload: dict[str, Any]) -> Learner:
    """Rebuild a learner from :meth:`Learner.to_payload`; it continues bit for bit.

    :raises ConfigError: if the payload is of another version or inconsistent.
    """
    _check(payload.get("version") == STATE_VERSION, "learner state version",
           payload.get("version"), str(STATE_VERSION))
    try:
        config = LearnerConfig(**payload["config"])
        learner = make_learner(config, int(payload["dim"]))
        _set_coefficients(learner, [float(w) for w in payload["weights"]],
                          float(payload["bias"]))
        learner.samples = int(payload["samples"])
        learner.squared_error_sum = float(payload["squared_error_sum"])
        learner.loss_smoothed = float(payload["loss_smoothed"])
        learner._load_state(payload["optimizer"])
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"learner state is incomplete or malformed: {error!r}") from None
    return learner


def _set_coefficients(learner: Learner, weights: list[float], bias: float) -> None:
    _check(len(weights) == learner.dim, "weights", len(weights), f"{learner.dim} values")
    if isinstance(learner, RLSLearner):
        learner.theta = np.array(weights + [bias], dtype=np.float64)
    elif isinstance(learner, SGDLearner):
        learner.weights, learner.bias = weights, bias
