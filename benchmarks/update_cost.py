"""Cost of one online update (predict, then learn from one sample), ours
against River, scikit-learn and the textbook numpy loop, on the same
samples, in-process (no Kafka).

Every contender runs plain SGD on the squared error with the same step,
``theta <- theta - 0.01 * 2 * z * (z . theta - y)``, from a zero model, one
sample at a time, in the same order:

- ``streamtrain sgd, learn_many``: the batch loop ``python -m consumer`` runs
  (rows as Python lists, one clock read per sample for the latency metric;
  the consumer's ``rows`` conversion costs about 0.2 µs more per sample at
  10 features and is not counted here, like River's dict building);
- ``streamtrain sgd, learn per sample``: one :meth:`Learner.learn` call each;
- ``River LinearRegression.learn_one`` (``optim.SGD(0.01)``,
  ``intercept_lr=0.01``; rows as dicts, built beforehand, untimed), and River's
  ``predict_one`` plus ``learn_one``, which is what a test-then-train loop
  calls;
- ``scikit-learn SGDRegressor.partial_fit`` on a one-row array
  (``eta0=0.02``, because its loss is half the squared error; constant
  rate, no penalty);
- the textbook numpy loop ``e = w @ x + b - y; w -= eta*2*e*x; b -= eta*2*e``
  on float64 rows.

Each contender's time is the median over ``--repeats`` passes of the
whole pass divided by the number of samples; the ratio column is that time
over ours (``learn_many``), so a ratio above 1 means slower than ours. The
last column, the largest difference of the final coefficients from ours,
shows that everybody computed the same model (differences come from the
order of floating-point additions).

Run: ``.venv/bin/python -m benchmarks.update_cost [--dims 10 100]
[--samples N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from river import linear_model, optim
from sklearn.linear_model import SGDRegressor

from streamtrain.learners import LearnerConfig, make_learner

RATE = 0.01

class Contender:
    """One way to learn every row in order from a zero model.

    ``prepare`` turns the samples into the contender's input form (not
    timed: River's dicts, our Python lists); ``learn`` is timed and returns
    the final ``(w..., b)``.
    """

    def __init__(self, prepare: Callable[[np.ndarray, np.ndarray], Any],
                 learn: Callable[[Any], np.ndarray]) -> None:
        self.prepare = prepare
        self.learn = learn


def _lists(X: np.ndarray, y: np.ndarray) -> tuple[list, list[float]]:
    return X.tolist(), y.tolist()


def _dicts(X: np.ndarray, y: np.ndarray) -> tuple[list[dict], list[float]]:
    return [dict(enumerate(row)) for row in X.tolist()], y.tolist()


def ours_many(data: tuple[list, list[float]]) -> np.ndarray:
    rows, targets = data
    learner = make_learner(LearnerConfig(learning_rate=RATE), len(rows[0]))
    learner.learn_many(rows, targets)
    return _theta(*learner.coefficients())


def ours_single(data: tuple[list, list[float]]) -> np.ndarray:
    rows, targets = data
    learner = make_learner(LearnerConfig(learning_rate=RATE), len(rows[0]))
    learn = learner.learn
    for x, target in zip(rows, targets):
        learn(x, target)
    return _theta(*learner.coefficients())


def river(data: tuple[list[dict], list[float]], predict_first: bool = False) -> np.ndarray:
    rows, targets = data
    model = linear_model.LinearRegression(optimizer=optim.SGD(RATE), intercept_lr=RATE)
    learn, predict = model.learn_one, model.predict_one
    if predict_first:
        for x, target in zip(rows, targets):
            predict(x)
            learn(x, target)
    else:
        for x, target in zip(rows, targets):
            learn(x, target)
    return _theta([model.weights.get(i, 0.0) for i in range(len(rows[0]))], model.intercept)


def sklearn_partial_fit(data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    X, y = data
    model = SGDRegressor(learning_rate="constant", eta0=2 * RATE, penalty=None)
    fit = model.partial_fit
    for i in range(len(X)):
        fit(X[i : i + 1], y[i : i + 1])
    return _theta(model.coef_.tolist(), float(model.intercept_[0]))


def numpy_loop(data: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    X, y = data
    w, b = np.zeros(X.shape[1]), 0.0
    for x, target in zip(X, y.tolist()):
        c = RATE * 2.0 * (float(w @ x) + b - target)
        w -= c * x
        b -= c
    return _theta(w.tolist(), b)


def _theta(weights: list[float], bias: float) -> np.ndarray:
    return np.array(list(weights) + [bias])


def _as_is(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return X, y


CONTENDERS: dict[str, Contender] = {
    "streamtrain sgd, learn_many (the consumer's loop)": Contender(_lists, ours_many),
    "streamtrain sgd, learn per sample": Contender(_lists, ours_single),
    "River LinearRegression.learn_one": Contender(_dicts, river),
    "River predict_one + learn_one": Contender(_dicts, lambda d: river(d, predict_first=True)),
    "scikit-learn SGDRegressor.partial_fit, one row": Contender(_as_is, sklearn_partial_fit),
    "textbook numpy loop": Contender(_as_is, numpy_loop),
}


def measure(dim: int, samples: int, repeats: int) -> list[tuple[str, float, float, float]]:
    """(name, µs per sample, ratio to ours, max |theta - theta_ours|) per contender.

    The contenders take turns within each repeat, each starting a repeat in
    turn, so a busy moment of the machine hits all of them alike.
    """
    rng = np.random.default_rng(dim)
    X = rng.normal(size=(samples, dim))
    y = X @ np.linspace(-1, 1, dim) + 0.5 + 0.1 * rng.normal(size=samples)
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    thetas: dict[str, np.ndarray] = {}
    inputs = {name: contender.prepare(X, y) for name, contender in CONTENDERS.items()}
    names = list(CONTENDERS)
    for repeat in range(repeats):
        for name in names[repeat % len(names):] + names[: repeat % len(names)]:
            started = time.perf_counter()
            thetas[name] = CONTENDERS[name].learn(inputs[name])
            times[name].append((time.perf_counter() - started) / samples * 1e6)
    ours_name = next(iter(CONTENDERS))
    ours = statistics.median(times[ours_name])
    return [(name, statistics.median(times[name]), statistics.median(times[name]) / ours,
             float(np.abs(thetas[name] - thetas[ours_name]).max())) for name in CONTENDERS]


def table(dims: list[int], samples: int, repeats: int) -> str:
    lines = [
        (f"{samples} samples per pass, median of {repeats} passes; ratio = µs / ours "
        "(learn_many)\n"),
        "| features | update | µs per sample | vs ours | max abs diff of coefficients |",
        "|---|---|---|---|---|",
    ]
    for dim in dims:
        for name, micros, ratio, diff in measure(dim, samples, repeats):
            lines.append(f"| {dim} | {name} | {micros:.2f} | {ratio:.2f} | {diff:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.update_cost",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    print(table(args.dims, args.samples, args.repeats))


if __name__ == "__main__":
    main()
