import numpy as np
import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka.future import Future
from prometheus_client import CollectorRegistry

from producer.encoding import encode_block
from producer.errors import InputError
from producer.metrics import ProducerMetrics
from producer.publisher import Clocks, Pacer, Publisher, PublishOptions
from producer.sources import Block, SyntheticSource
from producer.synthetic import SyntheticStream
from streamtrain import wire


class FakeProducer:
    """Keeps what is sent; acknowledges on flush, failing chosen ids."""

    def __init__(self, fail_ids=(), refuse_at=None, never_ack=False):
        self.sent = []
        self.pending = []
        self.fail_ids = set(fail_ids)
        self.refuse_at = refuse_at
        self.never_ack = never_ack

    def send(self, topic, value, key=None, partition=None):
        if self.refuse_at is not None and len(self.sent) == self.refuse_at:
            raise MessageSizeTooLargeError("too large")
        self.sent.append((topic, value, key, partition))
        future = Future()
        self.pending.append((wire.decode(value, len(value) // 8 - 4).id, future))
        return future

    def flush(self, timeout=None):
        if self.never_ack:
            raise KafkaTimeoutError("Timeout waiting for future")
        for sample_id, future in self.pending:
            if sample_id in self.fail_ids:
                future.failure(MessageSizeTooLargeError("rejected"))
            else:
                future.success(None)
        self.pending = []


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def _publisher(producer, registry=None, **options):
    metrics = ProducerMetrics.create(registry or CollectorRegistry())
    clocks = Clocks(monotonic=FakeClock(), wall_ms=lambda: 1_700_000_000_000)
    return Publisher(producer, PublishOptions(topic="t", **options), metrics, clocks=clocks)


def _source(dim=3, seed=0, key_field=None):
    return SyntheticSource(SyntheticStream(dim, seed), key_field)


def _value(registry, name):
    return registry.get_sample_value(name)


def test_publisher_count_reached_all_acknowledged_and_counted():
    registry = CollectorRegistry()
    producer = FakeProducer()
    stats = _publisher(producer, registry, count=2500, block_size=1000).run(_source())
    assert (stats.sent, stats.acked, stats.failed) == (2500, 2500, 0)
    assert stats.stopped_by == "count reached"
    assert _value(registry, "streamtrain_producer_samples_sent_total") == 2500
    assert _value(registry, "streamtrain_producer_samples_acked_total") == 2500
    # one sample in 16 (ids 0, 16, ..., 2496) has its latency observed
    assert _value(registry, "streamtrain_producer_send_latency_seconds_count") == 157


def test_publisher_values_are_the_synthetic_samples_with_ids_and_event_time():
    producer = FakeProducer()
    _publisher(producer, count=300, block_size=128).run(_source(seed=5))
    X, y = SyntheticStream(3, 5).next_block(300)
    decoded = [wire.decode(value, 3) for _, value, _, _ in producer.sent]
    assert [s.id for s in decoded] == list(range(300))
    assert np.array_equal(np.array([s.x for s in decoded]), X)
    assert np.array_equal(np.array([s.y for s in decoded]), y)
    assert {s.event_time_ms for s in decoded} == {1_700_000_000_000}


def test_publisher_delivery_failure_counts_failed_and_stops():
    registry = CollectorRegistry()
    producer = FakeProducer(fail_ids={7})
    stats = _publisher(producer, registry, count=20, block_size=10).run(_source())
    assert stats.failed == 1 and stats.acked == stats.sent - 1
    assert stats.first_error.startswith("sample 7:")
    assert _value(registry, "streamtrain_producer_send_errors_total") == 1


def test_publisher_refused_send_is_counted_failed():
    producer = FakeProducer(refuse_at=4)
    stats = _publisher(producer, count=10).run(_source())
    assert (stats.sent, stats.acked, stats.failed) == (5, 4, 1)
    assert stats.stopped_by == "delivery error"


def test_publisher_flush_timeout_counts_unconfirmed_as_failed():
    stats = _publisher(FakeProducer(never_ack=True), count=10).run(_source())
    assert (stats.sent, stats.acked, stats.failed) == (10, 0, 10)


def test_publisher_stop_request_flushes_what_was_sent():
    producer = FakeProducer()
    publisher = _publisher(producer, block_size=50)

    class StopAfterTwoBlocks:
        def update(self, stats):
            if stats.sent >= 100:
                publisher.request_stop("SIGTERM")

        def close(self, stats):
            pass

    publisher._observers.append(StopAfterTwoBlocks())
    stats = publisher.run(_source())
    assert (stats.sent, stats.acked, stats.stopped_by) == (100, 100, "SIGTERM")


def test_publisher_round_robin_sends_sample_i_to_partition_i_mod_n():
    producer = FakeProducer()
    _publisher(producer, count=9, partitions=3).run(_source())
    assert [partition for _, _, _, partition in producer.sent] == [0, 1, 2] * 3


def test_publisher_key_field_id_keys_by_sample_id():
    producer = FakeProducer()
    _publisher(producer, count=3).run(_source(key_field="id"))
    assert [key for _, _, key, _ in producer.sent] == [b"0", b"1", b"2"]


def test_publisher_fixed_event_time_advances_with_rate():
    producer = FakeProducer()
    _publisher(producer, count=4, rate=1000, event_time="5000").run(_source())
    times = [wire.decode(value, 3).event_time_ms for _, value, _, _ in producer.sent]
    assert times == [5000, 5001, 5002, 5003]


def test_publisher_no_event_time_clears_flag():
    producer = FakeProducer()
    _publisher(producer, count=2, event_time="none").run(_source())
    assert wire.decode(producer.sent[0][1], 3).event_time_ms is None


def test_publisher_bad_input_flushes_earlier_rows_and_records_error():
    class BadAfterOne:
        dim, skipped_rows, calls = 1, 0, 0

        def next_block(self, n):
            self.calls += 1
            if self.calls > 1:
                raise InputError("d.csv line 3: column 'y' is not a number: 'x'")
            return Block(np.ones((1, 1)), np.ones(1), 0)

    stats = _publisher(FakeProducer()).run(BadAfterOne())
    assert (stats.sent, stats.acked, stats.stopped_by) == (1, 1, "bad input")
    assert "line 3" in stats.input_error


def test_pacer_spaces_messages_evenly():
    clock = FakeClock()
    pacer = Pacer(100.0, clock, clock.sleep)
    for i in range(5):
        pacer.wait(i)
    assert clock.sleeps == pytest.approx([0.01] * 4)


def test_pacer_drops_backlog_after_a_stall_instead_of_bursting():
    clock = FakeClock()
    pacer = Pacer(100.0, clock, clock.sleep)
    pacer.wait(0)
    clock.now += 5.0
    pacer.wait(1)
    pacer.wait(2)
    assert clock.sleeps == pytest.approx([0.01])


def test_encoding_block_equals_wire_encode_per_sample():
    X = np.array([[1.0, -0.0], [2.5, 3e-310]])
    y = np.array([0.5, -1.0])
    values = encode_block(X, y, first_id=41, event_times_ms=np.array([7, 8]))
    assert values == [
        wire.encode(X[0], y[0], id=41, event_time_ms=7),
        wire.encode(X[1], y[1], id=42, event_time_ms=8),
    ]


def test_encoding_non_finite_value_raises():
    with pytest.raises(ValueError, match="finite"):
        encode_block(np.array([[np.nan]]), np.array([1.0]), first_id=0, event_times_ms=None)
