import json
import math

import numpy as np
import pytest

from streamtrain.errors import ConfigError
from streamtrain.learners import (
    LearnerConfig, NonFiniteUpdate, learner_from_payload, make_learner,
)


def data(n=400, dim=4, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, dim))
    w = np.arange(1, dim + 1, dtype=float) / 2
    y = X @ w - 1.5 + noise * rng.normal(size=n)
    return X, y, w


def train(config, X, y):
    learner = make_learner(config, X.shape[1])
    for x, target in zip(learner.rows(X), y.tolist()):
        learner.learn(x, target)
    return learner


def theta(learner):
    weights, bias = learner.coefficients()
    return np.array(weights + [bias])


def test_sgd_first_step_matches_hand_computation():
    learner = make_learner(LearnerConfig(learning_rate=0.125), 2)
    learner.weights, learner.bias = [1.0, -1.0], 0.5
    squared = learner.learn([2.0, 4.0], 3.0)
    # prediction 2 - 4 + 0.5 = -1.5, error -4.5; theta -= 0.125 * 2 * z * (-4.5)
    assert squared == 20.25
    assert learner.weights == [1.0 + 2.25, -1.0 + 4.5]
    assert learner.bias == 0.5 + 1.125
    assert learner.step == 1 and learner.samples == 1


def test_sgd_invscaling_uses_step_count():
    config = LearnerConfig(learning_rate=1.0, schedule="invscaling", power_t=0.5)
    learner = make_learner(config, 1)
    learner.step = 3
    learner.learn([1.0], 1.0)  # eta = 1 / sqrt(4) = 0.5, gradient (-2, -2)
    assert learner.weights == [1.0] and learner.bias == 1.0 and learner.step == 4


def test_sgd_l2_adds_weight_decay_but_not_on_bias():
    learner = make_learner(LearnerConfig(learning_rate=0.5, l2=0.5), 1)
    learner.weights, learner.bias = [2.0], 0.0
    learner.learn([0.0], 0.0)  # error 0: gradient is l2 * w = 1 on w, 0 on b
    assert learner.weights == [1.5] and learner.bias == 0.0


def test_sgd_clip_limits_gradient_norm():
    learner = make_learner(LearnerConfig(learning_rate=1.0, clip_norm=1.0), 1)
    learner.learn([3.0], 4.0 / 2)  # error -2, gradient (-12, -4), norm sqrt(160)
    moved = math.hypot(learner.weights[0], learner.bias)
    assert moved == pytest.approx(1.0, rel=1e-15)
    assert learner.weights[0] / learner.bias == pytest.approx(3.0)


@pytest.mark.parametrize("kind, rate", [("sgd", 0.01), ("adagrad", 0.5)])
def test_gradient_learner_converges_to_least_squares(kind, rate):
    X, y, _ = data(n=4000, noise=0.1)
    learner = train(LearnerConfig(kind=kind, learning_rate=rate), X, y)
    Z = np.column_stack([X, np.ones(len(y))])
    exact = np.linalg.lstsq(Z, y, rcond=None)[0]
    assert np.abs(theta(learner) - exact).max() < 0.05


def test_adagrad_step_matches_hand_computation():
    learner = make_learner(LearnerConfig(kind="adagrad", learning_rate=1.0), 1)
    learner.learn([1.0], 1.0)  # gradient (-2, -2): each coordinate moves by 2/(2+eps)
    assert learner.weights[0] == pytest.approx(1.0, rel=1e-8)
    assert learner.accumulators == [4.0] and learner.bias_accumulator == 4.0


def test_rls_equals_ridge_closed_form():
    X, y, _ = data(n=50)
    delta = 0.1
    learner = train(LearnerConfig(kind="rls", rls_delta=delta), X, y)
    Z = np.column_stack([X, np.ones(len(y))])
    ridge = np.linalg.solve(Z.T @ Z + delta * np.eye(Z.shape[1]), Z.T @ y)
    np.testing.assert_allclose(theta(learner), ridge, rtol=1e-9, atol=1e-11)


def test_rls_with_factor_one_equals_numpy_lstsq():
    X, y, _ = data(n=300)
    learner = train(LearnerConfig(kind="rls", rls_delta=1e-8), X, y)
    Z = np.column_stack([X, np.ones(len(y))])
    exact = np.linalg.lstsq(Z, y, rcond=None)[0]
    np.testing.assert_allclose(theta(learner), exact, rtol=1e-6, atol=1e-8)


def test_rls_forgetting_equals_weighted_closed_form():
    X, y, _ = data(n=80)
    lam, delta = 0.95, 0.5
    learner = train(LearnerConfig(kind="rls", forgetting_factor=lam, rls_delta=delta), X, y)
    Z = np.column_stack([X, np.ones(len(y))])
    weights = lam ** np.arange(len(y) - 1, -1, -1)
    A = (Z * weights[:, None]).T @ Z + lam ** len(y) * delta * np.eye(Z.shape[1])
    expected = np.linalg.solve(A, (Z * weights[:, None]).T @ y)
    np.testing.assert_allclose(theta(learner), expected, rtol=1e-8, atol=1e-10)


def test_prequential_loss_is_recorded_before_update():
    learner = make_learner(LearnerConfig(), 1)
    assert learner.learn([1.0], 2.0) == 4.0  # the zero model predicts 0
    second = learner.learn([1.0], 2.0)
    assert learner.squared_error_sum == 4.0 + second and learner.samples == 2
    assert learner.loss_smoothed == pytest.approx(4.0 + 0.01 * (second - 4.0))


@pytest.mark.parametrize("kind", ["sgd", "adagrad", "rls"])
def test_learner_overflowing_sample_raises_and_keeps_state(kind):
    learner = make_learner(LearnerConfig(kind=kind), 2)
    learner.learn([1.0, 2.0], 3.0)
    before = json.dumps(learner.to_payload())
    with pytest.raises(NonFiniteUpdate):
        learner.learn([1e200, 1e200], 1e300)
    assert json.dumps(learner.to_payload()) == before


@pytest.mark.parametrize("kind", ["sgd", "adagrad", "rls"])
@pytest.mark.parametrize("schedule", ["constant", "invscaling"])
def test_learner_resumed_from_json_continues_bit_for_bit(kind, schedule):
    X, y, _ = data(n=200, seed=3)
    config = LearnerConfig(kind=kind, schedule=schedule, l2=0.01, clip_norm=5.0,
                           forgetting_factor=0.99)
    whole = train(config, X, y)
    half = train(config, X[:77], y[:77])
    resumed = learner_from_payload(json.loads(json.dumps(half.to_payload())))
    for x, target in zip(resumed.rows(X[77:]), y[77:].tolist()):
        resumed.learn(x, target)
    assert json.dumps(resumed.to_payload()) == json.dumps(whole.to_payload())


@pytest.mark.parametrize(
    "change, name",
    [({"kind": "svm"}, "learner"), ({"learning_rate": 0}, "learning_rate"),
     ({"forgetting_factor": 1.5}, "forgetting_factor"), ({"schedule": "cosine"}, "schedule")],
)
def test_learner_config_invalid_value_is_named(change, name):
    with pytest.raises(ConfigError, match=name):
        LearnerConfig(**change)


def test_learner_from_payload_wrong_version_is_refused():
    payload = make_learner(LearnerConfig(), 2).to_payload()
    payload["version"] = 99
    with pytest.raises(ConfigError, match="version"):
        learner_from_payload(payload)
