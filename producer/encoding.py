"""Encoding blocks of samples into wire-format messages in one pass.

:func:`streamtrain.wire.encode_many` sets ids but no event time; the
producer stamps both, so it fills the same structured record
(:func:`streamtrain.wire.record_dtype`) itself. The bytes are those
:func:`streamtrain.wire.encode` would give for each sample.
"""

from __future__ import annotations

import numpy as np

from streamtrain import wire


def encode_block(
    X: np.ndarray, y: np.ndarray, *, first_id: int, event_times_ms: np.ndarray | int | None
) -> list[bytes]:
    """Encode the rows of ``X`` with targets ``y``, ids ``first_id, ...``.

    :param event_times_ms: one time per row, one time for every row, or
        None to leave the event time out (its flag bit cleared).
    :raises ValueError: if a value is not finite (such a sample could not
        be decoded by any reader).
    """
    X = np.asarray(X, dtype="<f8")
    y = np.asarray(y, dtype="<f8")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite to be encoded")
    n, dim = X.shape
    records = np.zeros(n, dtype=wire.record_dtype(dim))
    records["magic"] = wire.MAGIC
    records["version"] = wire.VERSION
    records["dim"] = dim
    records["id"] = np.arange(first_id, first_id + n, dtype="<u8")
    records["y"] = y
    records["x"] = X
    flags = wire.FLAG_ID
    if event_times_ms is not None:
        flags |= wire.FLAG_EVENT_TIME
        records["event_time_ms"] = event_times_ms
    records["flags"] = flags
    size = wire.encoded_size(dim)
    raw = records.tobytes()
    return [raw[i : i + size] for i in range(0, n * size, size)]
