"""Property-based tests of the decoder: any bytes decode to a valid sample
or raise SampleError with a known reason, nothing else."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamtrain import wire
from streamtrain.wire import SampleError

DIM = 3


def check_outcome(data: bytes) -> None:
    try:
        sample = wire.decode(data, DIM)
    except SampleError as error:
        assert error.reason in wire.REASONS
        return
    assert sample.dim == DIM
    assert np.isfinite(sample.x).all() and math.isfinite(sample.y)
    assert len(data) == wire.encoded_size(DIM)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_decode_of_random_bytes_is_a_sample_or_a_typed_error(data):
    check_outcome(data)


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=wire.encoded_size(DIM), max_size=wire.encoded_size(DIM)))
def test_decode_of_random_records_of_the_right_size_is_a_sample_or_a_typed_error(data):
    check_outcome(b"ST\x01" + data[3:])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=20))
def test_decode_batch_agrees_with_decode_message_by_message(values):
    batch = wire.decode_batch(values, DIM)
    for position, data in enumerate(values):
        try:
            wire.decode(data, DIM)
        except SampleError as error:
            assert batch.errors[position].reason == error.reason
        else:
            assert position in batch.index.tolist()
    assert len(batch.index) + len(batch.errors) == len(values)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=DIM, max_size=DIM),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_every_finite_sample_round_trips_bit_for_bit(x, y):
    got = wire.decode(wire.encode(x, y), DIM)
    assert got.x.tobytes() == np.array(x, dtype="<f8").tobytes()
    assert np.float64(got.y).tobytes() == np.float64(y).tobytes()
