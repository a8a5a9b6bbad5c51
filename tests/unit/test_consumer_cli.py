"""The command line, start-up and metric bookkeeping of the consumer
(these need no broker)."""

import argparse
import threading

import pytest
from prometheus_client import CollectorRegistry

from consumer.__main__ import main
from consumer.app import wait_for_topic
from consumer.metrics import ConsumerMetrics
from consumer.settings import ConsumerSettings
from streamtrain.errors import ConfigError
from streamtrain.learners import LearnerConfig
from streamtrain.settings import build_settings


def test_consumer_help_names_every_environment_variable(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for name in ConsumerSettings.model_fields:
        assert "--" + name.replace("_", "-") in text
    for variable in ("CONSUMER_GROUP_ID", "CONSUMER_CHECKPOINT_DIR", "CONSUMER_LEARNER",
                     "CONSUMER_UNTIL_IDLE", "CONSUMER_MAX_MESSAGES", "CONSUMER_METRICS_PORT",
                     "KAFKA_BOOTSTRAP_SERVERS", "STREAMTRAIN_TOPIC"):
        assert variable in text


def test_consumer_settings_environment_gives_learner_config(monkeypatch):
    monkeypatch.setenv("CONSUMER_LEARNER", "rls")
    monkeypatch.setenv("CONSUMER_FORGETTING_FACTOR", "0.9")
    settings = build_settings(ConsumerSettings, argparse.Namespace())
    config = settings.learner_config()
    assert config == LearnerConfig(kind="rls", forgetting_factor=0.9)


def test_consumer_settings_bad_forgetting_factor_is_named(monkeypatch):
    monkeypatch.setenv("CONSUMER_FORGETTING_FACTOR", "1.5")
    with pytest.raises(ConfigError, match="--forgetting-factor / CONSUMER_FORGETTING_FACTOR"):
        build_settings(ConsumerSettings, argparse.Namespace())


class TopicAppearsLater:
    """Reports no partitions for the first ``misses`` metadata look-ups."""

    def __init__(self, misses):
        self.misses = misses

    def partitions_for_topic(self, topic):
        self.misses -= 1
        return set() if self.misses >= 0 else {0, 1}


def test_wait_for_topic_returns_once_partitions_appear():
    consumer = TopicAppearsLater(misses=2)
    assert wait_for_topic(consumer, "t", threading.Event(), clock=lambda: 0.0)
    assert consumer.misses == -1


def test_wait_for_topic_stop_set_returns_false():
    stop = threading.Event()
    stop.set()
    assert not wait_for_topic(TopicAppearsLater(misses=5), "t", stop, clock=lambda: 0.0)


def test_consumer_metrics_partition_reassigned_to_same_process_continues():
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry, LearnerConfig())
    metrics.assigned(3, smoothed=0.0)
    metrics.learned(3, count=10, squared_error=2.5, smoothed=0.25)
    metrics.revoked(3)
    labels = {"partition": "3"}
    assert registry.get_sample_value("streamtrain_online_samples_total", labels) is None
    metrics.assigned(3, smoothed=0.25)
    assert registry.get_sample_value("streamtrain_online_samples_total", labels) == 10
    assert registry.get_sample_value("streamtrain_online_squared_error_total", labels) == 2.5


def test_consumer_metrics_non_finite_loss_is_never_observed():
    registry = CollectorRegistry()
    metrics = ConsumerMetrics(registry, LearnerConfig())
    metrics.learned(0, count=0, squared_error=0.0, smoothed=float("nan"))
    metrics.update_seconds.observe_many([float("nan"), -1.0, 2e-6])
    assert registry.get_sample_value("streamtrain_online_loss_smoothed", {"partition": "0"}) is None
    assert registry.get_sample_value("streamtrain_consumer_update_seconds_count") == 1
    assert registry.get_sample_value("streamtrain_consumer_update_seconds_bucket",
                                     {"le": "2.5e-06"}) == 1
