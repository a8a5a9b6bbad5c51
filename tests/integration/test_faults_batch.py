"""Fault: ``python -m batch_job run`` is SIGKILLed during its run.

A thread reads ``models/latest.json`` the whole time; it must always
either be absent or load and verify, and always be a complete model.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from batch_job.store import ModelStore
from streamtrain.model import read_model
from tests.faults import LatestWatcher, start_service, wait_for
from tests.helpers import produce_arrays
from tests.integration.test_batch_job import DIM, samples

ROWS = 60_000
PARTITIONS = 3


def batch_run(kafka_settings, topic, models_dir: Path, log: Path):
    """Start one ``batch_job run``, slowed by tiny QR blocks."""
    return start_service(
        log, "batch_job", "run", "--bootstrap-servers", kafka_settings.bootstrap_servers,
        "--topic", topic, "--dim", str(DIM), "--models-dir", str(models_dir),
        "--block-rows", "4", "--idle-timeout-s", "30",
    )


def clean_run(kafka_settings, topic, models_dir, log) -> float:
    """Run to completion; return how long it took."""
    started = time.monotonic()
    assert batch_run(kafka_settings, topic, models_dir, log).wait(timeout=300) == 0
    return time.monotonic() - started


def kill_after(process, log: Path, delay: float) -> bool:
    """SIGKILL ``process`` ``delay`` s after its replay started; True if it
    was still running when killed."""
    wait_for(lambda: "snapshot topic=" in log.read_text() or process.poll() is not None,
             timeout=120, what="the replay to start")
    time.sleep(delay)
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    return running


def assert_same_model(path: Path, reference: Path) -> None:
    got, expected = read_model(path), read_model(reference)
    assert np.array_equal(got.weights, expected.weights)
    assert got.bias == expected.bias and got.samples == expected.samples == ROWS


@pytest.fixture
def topic(kafka_settings, make_topics, topic_name):
    name, _ = make_topics(topic_name, partitions=PARTITIONS)
    X, y = samples(ROWS, seed=5)
    produce_arrays(kafka_settings, name, X, y, partitions=PARTITIONS)
    return name


def test_faults_batch_killed_mid_replay_latest_stays_whole_and_rerun_matches(
        kafka_settings, topic, tmp_path):
    """Injects: a SIGKILL of a batch run in the middle of its replay, after
    a clean run published version 1. Checks: during and after the kill
    ``latest.json`` always loads, verifies and is version 1; the rerun
    publishes a model equal to the clean run's bit for bit (weights, bias,
    sample count) and becomes ``latest``."""
    models = tmp_path / "models"
    duration = clean_run(kafka_settings, topic, models, tmp_path / "clean.log")
    first = ModelStore(models).latest()
    with LatestWatcher(models) as watcher:
        killed = batch_run(kafka_settings, topic, models, tmp_path / "killed.log")
        assert kill_after(killed, tmp_path / "killed.log", duration * 0.3)
        assert ModelStore(models).latest() == first
        assert clean_run(kafka_settings, topic, models, tmp_path / "rerun.log") > 0
    assert watcher.failures == [] and watcher.loaded > 0, watcher.failures
    assert watcher.samples_seen == {ROWS}
    rerun = ModelStore(models).latest()
    assert rerun != first
    assert_same_model(rerun, first)


@pytest.mark.slow
def test_faults_batch_killed_at_random_points_never_shows_a_partial_latest(
        kafka_settings, topic, tmp_path):
    """Injects: 6 runs SIGKILLed at seeded random points from the start of
    the replay to just past the expected end (so some kills fall in the
    training and publishing steps), starting from an empty models
    directory. Checks: ``latest.json`` is always absent or a complete,
    verified model of all samples; after a final clean run it equals a
    clean run in another directory bit for bit."""
    rng = random.Random(41)
    duration = clean_run(kafka_settings, topic, tmp_path / "reference", tmp_path / "ref.log")
    models = tmp_path / "models"
    with LatestWatcher(models) as watcher:
        for attempt in range(6):
            log = tmp_path / f"killed-{attempt}.log"
            process = batch_run(kafka_settings, topic, models, log)
            kill_after(process, log, rng.uniform(0.0, duration * 1.1))
            latest = ModelStore(models).latest()
            if latest is not None:
                assert_same_model(latest, ModelStore(tmp_path / "reference").latest())
        clean_run(kafka_settings, topic, models, tmp_path / "final.log")
    assert watcher.failures == [] and watcher.loaded > 0, watcher.failures
    assert watcher.samples_seen == {ROWS}
    assert_same_model(ModelStore(models).latest(), ModelStore(tmp_path / "reference").latest())
