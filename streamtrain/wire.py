"""The sample wire format: how one training sample travels through Kafka.

Every service encodes and decodes samples with this module and nothing
else. Version 1 is a fixed-size little-endian record, so a whole fetched
batch of same-sized messages is decoded with one ``numpy.frombuffer``
call instead of one parse per message::

    offset  size    field
    0       2       magic, the bytes b"ST"
    2       1       version, 1
    3       1       flags: bit 0 event time present, bit 1 id present,
                    the other bits are zero
    4       4       dim, unsigned 32-bit: number of features
    8       8       id, unsigned 64-bit (0 when absent)
    16      8       event time, signed 64-bit milliseconds since the Unix
                    epoch (0 when absent)
    24      8       y, IEEE 754 binary64: the target
    32      8*dim   x, IEEE 754 binary64 each: the features

A message is valid only if it is exactly ``32 + 8 * dim`` bytes long, its
magic, version and flags are as above, ``dim`` equals the dimension the
reader expects, it is no longer than the reader's size limit, and every
value of ``x`` and ``y`` is finite. Anything else raises
:class:`SampleError` whose :attr:`~SampleError.reason` is one of
:data:`REASONS`; the services count rejections by that reason and send
the message to the dead-letter topic with it.

Encoding is exact: decoding returns the same float64 bits that were
encoded, negative zero and subnormals included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from streamtrain.errors import StreamtrainError

MAGIC = b"ST"
VERSION = 1
HEADER_SIZE = 32
FLAG_EVENT_TIME = 0x01
FLAG_ID = 0x02
KNOWN_FLAGS = FLAG_EVENT_TIME | FLAG_ID
DEFAULT_MAX_BYTES = 1 << 20
"""Default size limit of one encoded sample: 1 MiB, about 131,000 features."""

_HEADER = struct.Struct("<2sBBIQqd")

REASONS = (
    "empty",
    "truncated",
    "bad_magic",
    "unsupported_version",
    "bad_flags",
    "oversized",
    "length_mismatch",
    "wrong_dimension",
    "non_finite",
)
"""Every reason a decoder can give, in the order the checks run."""


class SampleError(StreamtrainError):
    """A message is not a valid sample.

    :param reason: one of :data:`REASONS` (the services also use
        ``non_finite_update`` for a sample whose update overflowed).
    :param detail: what was found and what was expected.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Sample:
    """One training sample: features ``x`` (float64, 1-D) and target ``y``."""

    x: np.ndarray
    y: float
    event_time_ms: int | None = None
    id: int | None = None

    @property
    def dim(self) -> int:
        return int(self.x.shape[0])


def encoded_size(dim: int) -> int:
    """Size in bytes of an encoded sample with ``dim`` features."""
    return HEADER_SIZE + 8 * dim


def record_dtype(dim: int) -> np.dtype:
    """The numpy structured dtype of one encoded record of ``dim`` features."""
    return np.dtype(
        [
            ("magic", "S2"),
            ("version", "u1"),
            ("flags", "u1"),
            ("dim", "<u4"),
            ("id", "<u8"),
            ("event_time_ms", "<i8"),
            ("y", "<f8"),
            ("x", "<f8", (dim,)),
        ]
    )


def encode(
    x: Sequence[float] | np.ndarray,
    y: float,
    *,
    event_time_ms: int | None = None,
    id: int | None = None,
) -> bytes:
    """Encode one sample. Refuses non-finite values, so it never emits a
    message that a reader would reject for them."""
    features = np.ascontiguousarray(x, dtype="<f8")
    if features.ndim != 1:
        raise ValueError(f"x must be one-dimensional, got shape {features.shape}")
    if not (np.isfinite(features).all() and np.isfinite(y)):
        raise ValueError("x and y must be finite to be encoded")
    flags = (FLAG_EVENT_TIME if event_time_ms is not None else 0) | (
        FLAG_ID if id is not None else 0
    )
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        flags,
        features.shape[0],
        id or 0,
        event_time_ms or 0,
        float(y),
    )
    return header + features.tobytes()


def encode_many(X: np.ndarray, y: np.ndarray, *, first_id: int | None = None) -> list[bytes]:
    """Encode the rows of ``X`` with targets ``y`` in one vectorized pass.

    With ``first_id`` the samples get the ids ``first_id, first_id + 1, ...``.
    """
    X = np.asarray(X, dtype="<f8")
    y = np.asarray(y, dtype="<f8")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite to be encoded")
    n, dim = X.shape
    records = np.zeros(n, dtype=record_dtype(dim))
    records["magic"] = MAGIC
    records["version"] = VERSION
    records["dim"] = dim
    records["y"] = y
    records["x"] = X
    if first_id is not None:
        records["flags"] = FLAG_ID
        records["id"] = np.arange(first_id, first_id + n, dtype="<u8")
    size = encoded_size(dim)
    raw = records.tobytes()
    return [raw[i : i + size] for i in range(0, n * size, size)]


def decode(data: bytes, dim: int, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Sample:
    """Decode and validate one message.

    :param dim: the number of features the reader expects.
    :param max_bytes: messages longer than this are rejected unread.
    :raises SampleError: with the reason and what was expected.
    """
    header = _check_header(data, dim, max_bytes)
    _, _, flags, _, sample_id, event_time, y = header
    x = np.frombuffer(data, dtype="<f8", offset=HEADER_SIZE, count=dim)
    if not (np.isfinite(x).all() and np.isfinite(y)):
        raise SampleError("non_finite", "x or y holds NaN or infinity")
    return Sample(
        x=x,
        y=y,
        event_time_ms=event_time if flags & FLAG_EVENT_TIME else None,
        id=sample_id if flags & FLAG_ID else None,
    )


def _check_header(data: bytes, dim: int, max_bytes: int) -> tuple:
    """Validate everything but the values; return the unpacked header."""
    size = len(data)
    if size == 0:
        raise SampleError("empty", "message has no bytes")
    if size > max_bytes:
        raise SampleError("oversized", f"message has {size} bytes, the limit is {max_bytes}")
    if size < HEADER_SIZE:
        raise SampleError(
            "truncated", f"message has {size} bytes, a header needs {HEADER_SIZE}"
        )
    header = _HEADER.unpack_from(data)
    magic, version, flags, declared_dim = header[:4]
    if magic != MAGIC:
        raise SampleError("bad_magic", f"magic is {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise SampleError(
            "unsupported_version", f"version is {version}, this reader knows {VERSION}"
        )
    if flags & ~KNOWN_FLAGS:
        raise SampleError("bad_flags", f"flags are {flags:#04x}, known bits {KNOWN_FLAGS:#04x}")
    if size != encoded_size(declared_dim):
        raise SampleError(
            "length_mismatch",
            f"header says {declared_dim} features ({encoded_size(declared_dim)} bytes), "
            f"message has {size} bytes",
        )
    if declared_dim != dim:
        raise SampleError(
            "wrong_dimension", f"sample has {declared_dim} features, expected {dim}"
        )
    return header


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """The valid samples of a batch, in input order, and the rejections.

    ``index[i]`` is the position in the input of row ``i`` of ``X`` and
    ``y``; ``errors`` maps the position of every rejected message to its
    :class:`SampleError`.
    """

    X: np.ndarray
    y: np.ndarray
    index: np.ndarray
    errors: dict[int, SampleError]


def decode_batch(
    values: Sequence[bytes], dim: int, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> DecodedBatch:
    """Decode many messages at once; same validation as :func:`decode`.

    The messages of the expected size are joined and read with one
    structured ``numpy.frombuffer``; only rows that fail a vectorized check
    (and messages of another size) go through :func:`decode` to name the
    reason.
    """
    size = encoded_size(dim)
    fits = np.fromiter((len(v) == size for v in values), dtype=bool, count=len(values))
    fits &= size <= max_bytes
    candidates = np.flatnonzero(fits)
    records = np.frombuffer(b"".join(values[i] for i in candidates), dtype=record_dtype(dim))
    good = _vectorized_ok(records, dim)

    errors: dict[int, SampleError] = {}
    suspects = np.concatenate([np.flatnonzero(~fits), candidates[~good]])
    for position in suspects.tolist():
        try:
            decode(values[position], dim, max_bytes=max_bytes)
        except SampleError as error:
            errors[position] = error
    kept = records[good]
    return DecodedBatch(X=kept["x"], y=kept["y"], index=candidates[good], errors=errors)


def _vectorized_ok(records: np.ndarray, dim: int) -> np.ndarray:
    """Row mask of records whose header and values pass every check."""
    ok = (
        (records["magic"] == MAGIC)
        & (records["version"] == VERSION)
        & ((records["flags"] & ~np.uint8(KNOWN_FLAGS)) == 0)
        & (records["dim"] == dim)
        & np.isfinite(records["y"])
    )
    if dim:
        ok &= np.isfinite(records["x"]).all(axis=1)
    return ok
