import struct
import sys

import numpy as np
import pytest

from streamtrain import wire
from streamtrain.wire import SampleError


def reason_of(data: bytes, dim: int, **kwargs) -> str:
    with pytest.raises(SampleError) as caught:
        wire.decode(data, dim, **kwargs)
    return caught.value.reason


def test_round_trip_keeps_every_bit_of_extreme_values():
    x = np.array([sys.float_info.max, -sys.float_info.max, 5e-324, -0.0, 0.0, 1.0 / 3.0])
    data = wire.encode(x, -sys.float_info.min, event_time_ms=-5, id=2**64 - 1)
    got = wire.decode(data, dim=6)
    assert got.x.tobytes() == x.tobytes()
    assert np.signbit(got.x[3])
    assert struct.pack("<d", got.y) == struct.pack("<d", -sys.float_info.min)
    assert (got.event_time_ms, got.id) == (-5, 2**64 - 1)


def test_round_trip_without_optional_fields_gives_none():
    got = wire.decode(wire.encode([1.0, 2.0], 3.0), dim=2)
    assert got.event_time_ms is None and got.id is None
    assert got.x.tolist() == [1.0, 2.0] and got.y == 3.0


def test_encoded_size_is_header_plus_eight_bytes_per_feature():
    assert len(wire.encode(np.zeros(10), 0.0)) == wire.encoded_size(10) == 32 + 80


def test_encode_many_equals_encode_one_by_one():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    many = wire.encode_many(X, y, first_id=10)
    assert many == [wire.encode(X[i], y[i], id=10 + i) for i in range(5)]


def test_encode_refuses_non_finite_values():
    with pytest.raises(ValueError):
        wire.encode([np.nan], 1.0)
    with pytest.raises(ValueError):
        wire.encode([1.0], np.inf)


def valid(dim=3, **kwargs) -> bytes:
    return wire.encode(np.arange(dim, dtype=float), 1.0, **kwargs)


def patched(data: bytes, offset: int, raw: bytes) -> bytes:
    return data[:offset] + raw + data[offset + len(raw):]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (valid()[:20], "truncated"),
        (patched(valid(), 0, b"XX"), "bad_magic"),
        (patched(valid(), 2, b"\x02"), "unsupported_version"),
        (patched(valid(), 3, b"\x80"), "bad_flags"),
        (valid()[:-8], "length_mismatch"),
        (patched(valid(), 4, struct.pack("<I", 1000)), "length_mismatch"),
        (valid(dim=4), "wrong_dimension"),
        (patched(valid(), 32, struct.pack("<d", float("nan"))), "non_finite"),
        (patched(valid(), 40, struct.pack("<d", float("-inf"))), "non_finite"),
        (patched(valid(), 24, struct.pack("<d", float("inf"))), "non_finite"),
    ],
)
def test_decode_rejects_with_the_right_reason(data, reason):
    assert reason_of(data, 3) == reason


def test_decode_rejects_oversized_before_reading():
    assert reason_of(valid(dim=3), 3, max_bytes=40) == "oversized"


def test_rejection_message_names_found_and_expected():
    with pytest.raises(SampleError, match="sample has 4 features, expected 3"):
        wire.decode(valid(dim=4), 3)


def test_every_reason_is_listed():
    assert set(wire.REASONS) == {
        "empty", "truncated", "bad_magic", "unsupported_version", "bad_flags",
        "oversized", "length_mismatch", "wrong_dimension", "non_finite",
    }


def test_decode_batch_matches_decode_and_names_each_rejection():
    good = [wire.encode([float(i), -float(i)], float(i)) for i in range(4)]
    bad_nan = patched(good[0], 32, struct.pack("<d", float("nan")))
    values = [good[0], b"", good[1], bad_nan, b"garbage", good[2], valid(dim=5), good[3]]
    batch = wire.decode_batch(values, dim=2)
    assert batch.index.tolist() == [0, 2, 5, 7]
    assert batch.X.tolist() == [[0.0, -0.0], [1.0, -1.0], [2.0, -2.0], [3.0, -3.0]]
    assert batch.y.tolist() == [0.0, 1.0, 2.0, 3.0]
    reasons = {pos: err.reason for pos, err in batch.errors.items()}
    assert reasons == {1: "empty", 3: "non_finite", 4: "truncated", 6: "wrong_dimension"}


def test_decode_batch_of_nothing_is_empty():
    batch = wire.decode_batch([], dim=3)
    assert batch.X.shape == (0, 3) and batch.errors == {}


def test_decode_batch_respects_size_limit():
    batch = wire.decode_batch([valid(dim=3)], dim=3, max_bytes=40)
    assert batch.index.size == 0 and batch.errors[0].reason == "oversized"
