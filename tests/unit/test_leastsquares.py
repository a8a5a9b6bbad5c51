"""Streamed least squares against numpy.linalg.lstsq on the full data.

Tolerances: on well-conditioned data the weights agree with lstsq to a
relative 1e-10; on ill-conditioned data (cond([X|1]) about 1e9) both
solvers are only accurate to about cond * eps, so the comparison is on the
residual (the quantity least squares defines): the MSEs agree to a
relative 1e-9, and the weights to cond * eps * 100 relative.
"""

import numpy as np
import pytest

from streamtrain.leastsquares import (
    LeastSquaresError,
    QRAccumulator,
    gradient_descent,
)


def reference(X, y, ridge=0.0):
    """lstsq on the full augmented data (ridge rows appended)."""
    A = np.column_stack([X, np.ones(len(y))])
    b = y
    if ridge:
        d = X.shape[1]
        penalty = np.zeros((d, d + 1))
        penalty[:, :d] = np.sqrt(ridge) * np.eye(d)
        A, b = np.vstack([A, penalty]), np.concatenate([y, np.zeros(d)])
    theta, *_ = np.linalg.lstsq(A, b, rcond=None)
    return theta[:-1], theta[-1]


def data(n=2000, d=5, seed=0, noise=0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 5, size=d) + rng.normal(size=d)
    w = rng.normal(size=d)
    return X, X @ w + 3.0 + noise * rng.normal(size=n)


def accumulate(X, y, block_rows=256, chunk=97):
    acc = QRAccumulator(X.shape[1], block_rows=block_rows)
    for start in range(0, len(y), chunk):
        acc.add(X[start : start + chunk], y[start : start + chunk])
    return acc


def test_solve_well_conditioned_matches_lstsq_within_1e10():
    X, y = data()
    solution = accumulate(X, y).solve()
    weights, bias = reference(X, y)
    np.testing.assert_allclose(solution.weights, weights, rtol=1e-10, atol=1e-12)
    assert solution.bias == pytest.approx(bias, rel=1e-10)
    assert solution.rank == X.shape[1] + 1


def test_solve_ill_conditioned_matches_lstsq_residual_and_weights():
    rng = np.random.default_rng(3)
    n = 3000
    base = rng.normal(size=n)
    # two nearly collinear columns and a large offset: cond([X|1]) ~ 1e9
    X = np.column_stack([base, base + 1e-8 * rng.normal(size=n), 1e4 + rng.normal(size=n)])
    y = 2 * base + 0.5 * X[:, 2] + 0.01 * rng.normal(size=n)
    A = np.column_stack([X, np.ones(n)])
    cond = np.linalg.cond(A)
    assert cond > 1e8

    acc = accumulate(X, y)
    solution = acc.solve()
    weights, bias = reference(X, y)
    ref_mse = np.mean((X @ weights + bias - y) ** 2)
    assert acc.mse(solution.weights, solution.bias) == pytest.approx(ref_mse, rel=1e-9)
    theta = np.append(solution.weights, solution.bias)
    expected = np.append(weights, bias)
    tolerance = cond * np.finfo(float).eps * 100
    assert np.linalg.norm(theta - expected) <= tolerance * np.linalg.norm(expected)


def test_solve_normal_equations_would_fail_where_qr_does_not():
    rng = np.random.default_rng(5)
    n = 2000
    t = rng.normal(size=n)
    X = np.column_stack([t, t + 1e-7 * rng.normal(size=n)])
    y = X @ np.array([1.0, -1.0]) + 1e-9 * rng.normal(size=n)
    weights, bias = reference(X, y)
    solution = accumulate(X, y).solve()
    np.testing.assert_allclose(solution.weights, weights, rtol=1e-6)
    gram = np.column_stack([X, np.ones(n)])
    gram = gram.T @ gram
    normal = np.linalg.solve(gram, np.column_stack([X, np.ones(n)]).T @ y)
    assert np.abs(normal[:2] - weights).max() > 100 * np.abs(solution.weights - weights).max()


def test_solve_rank_deficient_returns_minimum_norm_like_lstsq():
    X, y = data(n=500, d=3)
    X = np.column_stack([X, 2 * X[:, 0]])
    solution = accumulate(X, y).solve()
    weights, bias = reference(X, y)
    assert solution.rank == 4
    np.testing.assert_allclose(solution.weights, weights, rtol=1e-8, atol=1e-10)
    assert solution.bias == pytest.approx(bias, rel=1e-8)


def test_solve_fewer_rows_than_columns_matches_lstsq():
    X, y = data(n=3, d=6)
    solution = accumulate(X, y, block_rows=2, chunk=1).solve()
    weights, bias = reference(X, y)
    np.testing.assert_allclose(solution.weights, weights, rtol=1e-9, atol=1e-12)


def test_solve_ridge_matches_augmented_lstsq():
    X, y = data()
    solution = accumulate(X, y).solve(ridge=50.0)
    weights, bias = reference(X, y, ridge=50.0)
    np.testing.assert_allclose(solution.weights, weights, rtol=1e-10, atol=1e-12)
    assert solution.bias == pytest.approx(bias, rel=1e-10)


def test_solve_no_rows_raises():
    with pytest.raises(LeastSquaresError, match="no samples"):
        QRAccumulator(3).solve()


def test_add_wrong_shape_raises_naming_shapes():
    with pytest.raises(LeastSquaresError, match=r"\(n, 3\).*\(4, 2\)"):
        QRAccumulator(3).add(np.zeros((4, 2)), np.zeros(4))


def test_add_chunking_does_not_change_bits():
    X, y = data(n=1000)
    one = accumulate(X, y, chunk=1000).r_factor()
    many = accumulate(X, y, chunk=13).r_factor()
    assert one.tobytes() == many.tobytes()


def test_merge_equals_single_stream_within_rounding():
    X, y = data(n=3000)
    left, right = accumulate(X[:1234], y[:1234]), accumulate(X[1234:], y[1234:])
    merged = left.merge(right)
    assert merged.rows == 3000
    np.testing.assert_allclose(merged.gram(), accumulate(X, y).gram(), rtol=1e-12)
    np.testing.assert_allclose(merged.solve().weights, reference(X, y)[0], rtol=1e-10)


def test_state_round_trip_is_bit_exact():
    X, y = data(n=700)
    acc = accumulate(X, y)
    again = QRAccumulator.from_state(acc.to_state())
    assert again.r_factor().tobytes() == acc.r_factor().tobytes()
    assert again.rows == 700


def test_mse_of_any_model_matches_direct_computation():
    X, y = data()
    acc = accumulate(X, y)
    rng = np.random.default_rng(9)
    w, b = rng.normal(size=X.shape[1]), 0.7
    direct = np.mean((X @ w + b - y) ** 2)
    assert acc.mse(w, b) == pytest.approx(direct, rel=1e-10)


def test_gram_matches_explicit_products():
    X, y = data(n=400)
    A = np.column_stack([X, np.ones(len(y)), y])
    np.testing.assert_allclose(accumulate(X, y).gram(), A.T @ A, rtol=1e-11, atol=1e-8)


def test_gradient_descent_converges_to_lstsq_on_scaled_data():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(1000, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.5 + 0.1 * rng.normal(size=1000)
    acc = accumulate(X, y)
    solution = gradient_descent(acc.gram(), acc.rows, steps=2000, learning_rate=0.1)
    weights, bias = reference(X, y)
    np.testing.assert_allclose(solution.weights, weights, rtol=1e-8)
    assert solution.bias == pytest.approx(bias, rel=1e-8)
    assert solution.steps == 2000


def test_gradient_descent_ridge_converges_to_ridge_solution():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 3))
    y = X @ np.array([1.0, 2.0, 3.0]) + 0.2 * rng.normal(size=500)
    acc = accumulate(X, y)
    solution = gradient_descent(acc.gram(), acc.rows, steps=3000, learning_rate=0.1, ridge=100.0)
    np.testing.assert_allclose(solution.weights, acc.solve(ridge=100.0).weights, rtol=1e-8)


def test_gradient_descent_too_large_rate_raises_with_bound():
    X, y = data()
    acc = accumulate(X, y)
    with pytest.raises(LeastSquaresError, match="diverged with learning_rate=10.*below"):
        gradient_descent(acc.gram(), acc.rows, steps=5000, learning_rate=10.0)
