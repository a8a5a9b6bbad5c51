"""Exact least squares from streamed data, in memory that does not grow.

The problem: given rows ``x_i`` (``d`` features) and targets ``y_i``, find
the weights ``w`` and bias ``b`` minimising::

    sum_i (w . x_i + b - y_i)^2  +  ridge * |w|^2        (the bias is not penalised)

Method (a streamed QR, not the raw normal equations). Every row becomes a
row of the augmented matrix ``A = [X | 1 | y]`` with ``p = d + 2``
columns. :class:`QRAccumulator` keeps only the ``p x p`` upper triangular
factor ``R`` of ``A = Q R``: a block of rows is folded in by a Householder
QR of ``R`` stacked on the block, so memory is ``O(p^2 + block * p)``
whatever the number of rows. Since ``A^T A = R^T R``, ``R`` holds every
sufficient statistic (``X^T X``, ``X^T y``, ``y^T y``, the sums), but it
is never squared to solve: the weights come from an SVD-based least
squares solve of the ``(d+1) x (d+1)`` leading block of ``R`` against its
last column, which gives the same (minimum-norm) solution as
``numpy.linalg.lstsq`` on the full data, with the same conditioning:
relative error about ``cond(A) * eps``, not ``cond(A)^2 * eps`` as the
normal equations would.

Guarantees:

- Accumulators are mergeable (:meth:`QRAccumulator.merge`): the ``R`` of
  two row sets stacked is the ``R`` of their union, so partitions can be
  reduced in separate processes or on separate machines.
- Results are deterministic: the same rows, fed in the same order, give
  the same bits. Rows are buffered into fixed blocks of ``block_rows``, so
  the result does not depend on how the caller chunks its input.
- The MSE of any linear model on the accumulated rows is computed from
  ``R`` alone (:meth:`QRAccumulator.mse`), with no second pass over the
  data: ``|A v|^2 = |R v|^2`` for ``v = [w, b, -1]``.

Full-batch gradient descent (:func:`gradient_descent`) runs on the same
statistics (the Gram matrix ``R^T R``), for comparison with the exact
solution; each step costs ``O(p^2)`` and needs no replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamtrain.errors import StreamtrainError

DEFAULT_BLOCK_ROWS = 512
"""Rows buffered before they are folded into ``R``."""


class LeastSquaresError(StreamtrainError):
    """The problem cannot be solved as asked (no rows, divergence, bad shape)."""


@dataclass(frozen=True)
class Solution:
    """Weights and bias of a fitted linear model, and how they were found.

    ``rank`` is the numerical rank of ``[X | 1]`` (plus the ridge rows)
    seen by the solver; below ``dim + 1`` the solution is the minimum-norm
    one, as ``numpy.linalg.lstsq`` returns.
    """

    weights: np.ndarray
    bias: float
    method: str
    rank: int
    steps: int = 0


@dataclass
class QRAccumulator:
    """The ``R`` factor of ``[X | 1 | y]`` over every row added so far.

    :param dim: number of features ``d``.
    :param block_rows: rows buffered before a fold; changing it changes the
        last bits of ``R`` (not its value within rounding).
    """

    dim: int
    block_rows: int = DEFAULT_BLOCK_ROWS
    rows: int = 0
    _r: np.ndarray = field(init=False, repr=False)
    _buffer: np.ndarray = field(init=False, repr=False)
    _filled: int = field(init=False, default=0, repr=False)

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise LeastSquaresError(f"dim must be at least 1, got {self.dim}")
        if self.block_rows < 1:
            raise LeastSquaresError(f"block_rows must be at least 1, got {self.block_rows}")
        self._r = np.zeros((0, self.width))
        self._buffer = np.empty((self.block_rows, self.width))

    @property
    def width(self) -> int:
        """Columns of the augmented matrix: features, bias, target."""
        return self.dim + 2

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        """Add the rows of ``X`` (``n x dim``) with targets ``y`` (``n``)."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.dim or y.shape != (X.shape[0],):
            raise LeastSquaresError(
                f"expected X of shape (n, {self.dim}) and y of shape (n,), "
                f"got {X.shape} and {y.shape}"
            )
        start = 0
        while start < len(y):
            take = min(self.block_rows - self._filled, len(y) - start)
            rows = self._buffer[self._filled : self._filled + take]
            rows[:, : self.dim] = X[start : start + take]
            rows[:, self.dim] = 1.0
            rows[:, self.dim + 1] = y[start : start + take]
            self._filled += take
            start += take
            if self._filled == self.block_rows:
                self._fold()
        self.rows += len(y)

    def _fold(self) -> None:
        """Fold the buffered rows into ``R``."""
        if self._filled:
            stacked = np.vstack([self._r, self._buffer[: self._filled]])
            self._r = _r_factor(stacked)
            self._filled = 0

    def r_factor(self) -> np.ndarray:
        """The ``p x p`` upper triangular ``R`` (zero rows while fewer than
        ``p`` rows were added). Flushes buffered rows first."""
        self._fold()
        square = np.zeros((self.width, self.width))
        square[: self._r.shape[0]] = self._r
        return square

    def merge(self, other: "QRAccumulator") -> "QRAccumulator":
        """A new accumulator over the rows of ``self`` then ``other``."""
        if other.dim != self.dim:
            raise LeastSquaresError(f"cannot merge dim {other.dim} into dim {self.dim}")
        merged = QRAccumulator(self.dim, self.block_rows)
        merged._r = _r_factor(np.vstack([self.r_factor(), other.r_factor()]))
        merged.rows = self.rows + other.rows
        return merged

    def to_state(self) -> dict:
        """A JSON-ready state (``R`` row by row and the row count)."""
        return {"dim": self.dim, "rows": self.rows, "r": self.r_factor().tolist()}

    @classmethod
    def from_state(cls, state: dict, block_rows: int = DEFAULT_BLOCK_ROWS) -> "QRAccumulator":
        """Rebuild an accumulator from :meth:`to_state` (exact, bit for bit)."""
        acc = cls(int(state["dim"]), block_rows)
        r = np.array(state["r"], dtype=np.float64)
        if r.shape != (acc.width, acc.width):
            raise LeastSquaresError(f"state R has shape {r.shape}, expected {(acc.width,) * 2}")
        acc._r, acc.rows = r, int(state["rows"])
        return acc

    def gram(self) -> np.ndarray:
        """``A^T A`` for ``A = [X | 1 | y]`` (``p x p``)."""
        r = self.r_factor()
        return r.T @ r

    def solve(self, ridge: float = 0.0) -> Solution:
        """The exact (ridge) least-squares solution.

        The ridge rows ``sqrt(ridge) * I`` (on the weights only) are folded
        into ``R``, then ``min |R1 theta - z|`` is solved by SVD
        (``numpy.linalg.lstsq`` on the small triangular system), whose
        cut-off for small singular values is the one ``lstsq`` uses on the
        full data (``eps * max(rows, dim + 1)``).

        :raises LeastSquaresError: if no row was added or ``ridge < 0``.
        """
        if self.rows == 0:
            raise LeastSquaresError("no samples to solve least squares on")
        if not ridge >= 0:
            raise LeastSquaresError(f"ridge must be >= 0, got {ridge}")
        r = self.r_factor()
        if ridge > 0:
            penalty = np.zeros((self.dim, self.width))
            penalty[:, : self.dim] = np.sqrt(ridge) * np.eye(self.dim)
            r = _r_factor(np.vstack([r, penalty]))
        n = self.dim + 1
        rcond = np.finfo(np.float64).eps * max(self.rows, n)
        theta, _, rank, _ = np.linalg.lstsq(r[:n, :n], r[:n, n], rcond=rcond)
        return Solution(theta[: self.dim].copy(), float(theta[self.dim]), "lstsq-qr", int(rank))

    def sse(self, weights: np.ndarray, bias: float) -> float:
        """Sum of squared errors of ``x . weights + bias`` on the rows."""
        v = np.concatenate([np.asarray(weights, dtype=np.float64), [bias, -1.0]])
        if v.shape != (self.width,):
            raise LeastSquaresError(f"model has {len(v) - 2} weights, expected {self.dim}")
        residual = self.r_factor() @ v
        return float(residual @ residual)

    def mse(self, weights: np.ndarray, bias: float) -> float:
        """Mean squared error of a linear model on the rows (NaN for none).

        Computed as ``|R v|^2 / n``: exact up to rounding of order
        ``eps * |R| * |v|`` in the residual norm, so accurate relative to
        the MSE unless the model fits far better than the data's scale.
        """
        if self.rows == 0:
            return float("nan")
        return self.sse(weights, bias) / self.rows


def _r_factor(matrix: np.ndarray) -> np.ndarray:
    """The R of a Householder QR, with at most ``columns`` rows."""
    r = np.linalg.qr(matrix, mode="r")
    return np.ascontiguousarray(r[: matrix.shape[1]])


def gradient_descent(
    gram: np.ndarray,
    rows: int,
    *,
    steps: int,
    learning_rate: float,
    ridge: float = 0.0,
) -> Solution:
    """Textbook full-batch gradient descent on the mean squared error.

    Minimises ``(|X w + b - y|^2 + ridge * |w|^2) / rows`` from zero with a
    fixed step, using only ``gram = A^T A`` of ``A = [X | 1 | y]``; the
    gradient is ``2 / rows * (G theta - g + ridge * [w, 0])``. It
    converges only for ``learning_rate < 2 / L`` (``L`` the largest
    eigenvalue of the Hessian); no feature scaling is done.

    :raises LeastSquaresError: on no rows, a bad step count or rate, or a
        non-finite iterate (divergence), naming the safe rate bound.
    """
    if rows <= 0:
        raise LeastSquaresError("no samples to run gradient descent on")
    if steps < 0 or not learning_rate > 0:
        raise LeastSquaresError(
            f"need steps >= 0 and learning_rate > 0, got {steps} and {learning_rate}"
        )
    n = gram.shape[0] - 1
    hessian = 2.0 / rows * gram[:n, :n]
    hessian[: n - 1, : n - 1] += 2.0 / rows * ridge * np.eye(n - 1)
    target = 2.0 / rows * gram[:n, n]
    theta = np.zeros(n)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            theta = theta - learning_rate * (hessian @ theta - target)
    if not np.isfinite(theta).all():
        bound = 2.0 / float(np.linalg.eigvalsh(hessian)[-1])
        raise LeastSquaresError(
            f"gradient descent diverged with learning_rate={learning_rate}; "
            f"it converges below {bound:.6g} on this data"
        )
    return Solution(theta[: n - 1].copy(), float(theta[n - 1]), "gd", n, steps)
