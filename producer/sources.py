"""Where samples come from: blocks of rows, each with its sample index.

A source gives :class:`Block` objects through ``next_block(n)`` (at most
``n`` rows; None once exhausted) and says how many input rows it skipped.
Sample ids are 0-based sample indices: the first row of the first block
is sample 0, and rows a file source skips get no index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from producer.synthetic import SyntheticStream


@dataclass(frozen=True)
class Block:
    """Rows ``first_id .. first_id + len(y) - 1`` and their message keys."""

    X: np.ndarray
    y: np.ndarray
    first_id: int
    keys: list[bytes] | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])


class Source(Protocol):
    dim: int
    skipped_rows: int

    def next_block(self, n: int) -> Block | None:
        """At most ``n`` further samples, or None when there are no more."""


class SyntheticSource:
    """Endless blocks from a :class:`SyntheticStream`.

    :param key_field: ``id``, ``y`` or ``x0`` .. ``x<dim-1>``: the field
        whose text becomes the message key, or None for no key.
    """

    skipped_rows = 0

    def __init__(self, stream: SyntheticStream, key_field: str | None = None) -> None:
        self.stream = stream
        self.dim = stream.dim
        self._key_column = _synthetic_key_column(key_field, stream.dim)

    def next_block(self, n: int) -> Block:
        first = self.stream.position
        X, y = self.stream.next_block(n)
        return Block(X, y, first, self._keys(first, X, y))

    def _keys(self, first: int, X: np.ndarray, y: np.ndarray) -> list[bytes] | None:
        column = self._key_column
        if column is None:
            return None
        if column == "id":
            return [str(i).encode() for i in range(first, first + len(y))]
        values = y if column == "y" else X[:, column]
        return [repr(value).encode() for value in values.tolist()]


def _synthetic_key_column(key_field: str | None, dim: int) -> str | int | None:
    """``"id"``, ``"y"``, a feature column number, or None."""
    if key_field is None or key_field in ("id", "y"):
        return key_field
    if key_field.startswith("x") and key_field[1:].isdigit() and int(key_field[1:]) < dim:
        return int(key_field[1:])
    raise ValueError(
        f"synthetic samples have the fields id, y and x0..x{dim - 1}, "
        f"cannot key by {key_field!r}"
    )
