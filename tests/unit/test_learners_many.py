"""Learner.learn_many: the batch path the consumer uses, checked bit for bit
against one call per row and against an independent textbook SGD."""

import itertools
import json
import math

import numpy as np
import pytest

from streamtrain.learners import (
    SMOOTHING,
    LearnerConfig,
    NonFiniteUpdate,
    learner_from_payload,
    make_learner,
)

OPTIONS = [
    {"kind": kind, "schedule": schedule, "l2": l2, "clip_norm": clip, "learning_rate": 0.05}
    for kind, schedule, l2, clip in itertools.product(
        ("sgd", "adagrad", "rls"), ("constant", "invscaling"), (0.0, 0.1), (0.0, 1.0))
    if kind != "rls" or (schedule, l2, clip) == ("constant", 0.0, 0.0)
]


def data_with_outliers(n=600, dim=5, seed=3):
    """Rows with a few that overflow the prediction or the update."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    y = X @ np.arange(dim) + 0.5 + 0.1 * rng.normal(size=n)
    X[50] *= 1e160
    y[120] = 1e200
    X[300] = 1e308
    return X, y


def one_call_per_row(learner, rows, targets):
    rejected = []
    for position, (x, target) in enumerate(zip(rows, targets)):
        try:
            learner.learn(x, target)
        except NonFiniteUpdate as error:
            rejected.append((position, str(error)))
    return rejected


def state(learner):
    return json.dumps(learner.to_payload())


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(map(str, o.values())))
def test_learn_many_any_learner_matches_one_call_per_row_bit_for_bit(options):
    X, y = data_with_outliers()
    config = LearnerConfig(**options)
    single, batched = make_learner(config, 5), make_learner(config, 5)
    expected = one_call_per_row(single, single.rows(X), y.tolist())

    result = batched.learn_many(batched.rows(X), y.tolist())

    assert [(p, str(e)) for p, e in result.rejected] == expected
    assert len(expected) >= 2
    assert result.applied == len(X) - len(expected)
    assert state(batched) == state(single)


def test_learn_many_resumed_in_pieces_matches_one_batch():
    X, y = data_with_outliers()
    config = LearnerConfig(schedule="invscaling", l2=0.01, clip_norm=2.0)
    whole = make_learner(config, 5)
    whole.learn_many(whole.rows(X), y.tolist())
    first = make_learner(config, 5)
    first.learn_many(first.rows(X[:217]), y[:217].tolist())
    resumed = learner_from_payload(json.loads(state(first)))

    resumed.learn_many(resumed.rows(X[217:]), y[217:].tolist())

    assert state(resumed) == state(whole)


def textbook_sgd(rows, targets, eta):
    """theta <- theta - eta * 2 * z * (z . theta - y), written independently."""
    weights, bias = [0.0] * len(rows[0]), 0.0
    total, smoothed = 0.0, 0.0
    for count, (x, target) in enumerate(zip(rows, targets), start=1):
        error = sum(w * xi for w, xi in zip(weights, x)) + bias - target
        c = eta * (2.0 * error)
        weights = [w - c * xi for w, xi in zip(weights, x)]
        bias -= c
        total += error * error
        smoothed = error * error if count == 1 else smoothed + SMOOTHING * (
            error * error - smoothed)
    return weights, bias, total, smoothed


def test_sgd_learn_many_matches_textbook_loop_bit_for_bit():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(2000, 10))
    y = (X @ np.linspace(-1, 1, 10) + 0.5).tolist()
    learner = make_learner(LearnerConfig(learning_rate=0.01), 10)

    result = learner.learn_many(X.tolist(), y)

    weights, bias, total, smoothed = textbook_sgd(X.tolist(), y, 0.01)
    assert learner.weights == weights
    assert learner.bias == bias
    assert learner.squared_error_sum == total == result.squared_error
    assert learner.loss_smoothed == smoothed
    assert learner.samples == learner.step == 2000


def test_sgd_learn_many_update_overflow_is_refused_and_changes_nothing():
    learner = make_learner(LearnerConfig(learning_rate=0.05), 2)
    before = state(learner)

    # zero model: error -1e150 squares to 1e300, but the step overflows
    result = learner.learn_many([[1e300, 0.0]], [1e150])

    assert result.applied == 0
    assert [str(e) for _, e in result.rejected] == ["update of sgd model is not finite"]
    assert state(learner) == before


def test_learned_batch_durations_skip_rejected_rows():
    ticks = iter([0.0, 1.0, 3.0, 6.0, 10.0])
    learner = make_learner(LearnerConfig(), 1)

    result = learner.learn_many([[1.0], [1e300], [1.0], [2.0]], [1.0, 1e200, 1.0, 2.0],
                                clock=lambda: next(ticks))

    assert [p for p, _ in result.rejected] == [1]
    assert result.durations().tolist() == [1.0, 3.0, 4.0]
    assert math.isfinite(result.squared_error)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("kind", ["sgd", "adagrad"])
def test_learner_huge_finite_sample_is_refused_and_later_samples_still_learn(kind):
    """Injects one finite sample of 1e100 among ordinary ones into a
    gradient learner; checks it is refused (the model it would make has an
    overflowing norm) and that the samples after it are all learned. (RLS
    applies it: its gain scales with 1/|x|, and like batch least squares it
    fits that sample exactly with a finite model.)"""
    learner = make_learner(LearnerConfig(kind=kind, learning_rate=0.01), 2)
    rng = np.random.default_rng(5)
    rows = [list(rng.normal(size=2)) for _ in range(50)]
    targets = [row[0] - row[1] for row in rows]
    rows.insert(10, [1e100, 1e100])
    targets.insert(10, 1e100)
    result = learner.learn_many(learner.rows(np.array(rows)), targets)
    assert [position for position, _ in result.rejected] == [10]
    assert result.applied == 50
    assert np.isfinite(learner.to_payload()["weights"]).all()
