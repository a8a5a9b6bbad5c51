"""Damaged checkpoints and hostile file systems under a running
``python -m consumer`` process, against the real broker.

Each test damages the checkpoint files or the file system of a real
consumer process and checks the documented outcome: the process falls
back to the previous checkpoint (and ends with the exact model of an
uninterrupted run), or stops with one clear ERROR line, a non-zero exit
and no traceback, leaving the last good checkpoint on disk. The read-only
and full-disk cases mount a small tmpfs (skipped, saying why, where
mounting is refused).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from streamtrain.checkpoint import CheckpointStore
from tests.helpers import produce_arrays
from tests.integration.test_consumer import reference, samples
from tests.unit.test_checkpoint_damage import fill, remount, small_tmpfs

ROOT = Path(__file__).resolve().parents[2]


def command(kafka_settings, topic: str, checkpoint_dir: Path, *flags: str) -> list[str]:
    return [
        sys.executable, "-m", "consumer", "--bootstrap-servers",
        kafka_settings.bootstrap_servers, "--topic", topic, "--dead-letter-topic",
        topic + ".dlq", "--dim", "5", "--group-id", f"g-{topic}", "--checkpoint-dir",
        str(checkpoint_dir), "--session-timeout-ms", "6000", *flags,
    ]


def run_consumer(kafka_settings, topic: str, checkpoint_dir: Path,
                 *flags: str) -> subprocess.CompletedProcess:
    """Run the consumer until it has been idle for 2 s; return its result."""
    return subprocess.run(
        command(kafka_settings, topic, checkpoint_dir, "--until-idle", "2", *flags),
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def start_consumer(kafka_settings, topic: str, checkpoint_dir: Path,
                   *flags: str) -> subprocess.Popen:
    """Start a consumer that runs until stopped; its output is captured."""
    return subprocess.Popen(
        command(kafka_settings, topic, checkpoint_dir, *flags), cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[0]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def flip_byte(path: Path) -> None:
    """Flip one bit of a digit inside the weights of a checkpoint file."""
    data = bytearray(path.read_bytes())
    position = data.index(b'"weights"') + 20
    while not chr(data[position]).isdigit():
        position += 1
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def set_version(path: Path, version: int) -> None:
    document = json.loads(path.read_bytes())
    document["version"] = version
    path.write_text(json.dumps(document, indent=1))


def assert_stopped_cleanly(output: str, returncode: int, message: str) -> None:
    """A non-zero exit, one ERROR line that names the problem, no traceback."""
    assert returncode != 0, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if " ERROR consumer" in line]
    assert errors and message in errors[-1], output


def test_consumer_process_damaged_latest_checkpoints_resume_from_previous(
        kafka_settings, make_topics, topic_name, tmp_path):
    """Injects: between two runs of the consumer process, partition 0's latest
    checkpoint truncated, partition 1's with one flipped bit in its weights,
    partition 2's rewritten as version 2, and partition 3's latest and
    previous both truncated. Checks: the process logs each skipped file,
    exits 0, and every partition's final model and sample count are bit for
    bit those of an uninterrupted run over all samples (partitions 0-2 from
    their previous checkpoint, partition 3 from offset 0)."""
    partitions = 4
    topic, _ = make_topics(topic_name, partitions=partitions)
    X, y = samples(1200, seed=11)
    ckpt = tmp_path / "ckpt"
    for rows in (slice(0, 400), slice(400, 800)):
        produce_arrays(kafka_settings, topic, X[rows], y[rows], partitions=partitions)
        assert run_consumer(kafka_settings, topic, ckpt).returncode == 0
    store = CheckpointStore(ckpt, topic)
    assert all(store.previous_path(p).exists() for p in range(partitions))

    latest = store.latest_path
    latest(0).write_bytes(latest(0).read_bytes()[:300])
    flip_byte(latest(1))
    set_version(latest(2), 2)
    for path in (latest(3), store.previous_path(3)):
        path.write_bytes(path.read_bytes()[:120])
    produce_arrays(kafka_settings, topic, X[800:], y[800:], partitions=partitions)
    result = run_consumer(kafka_settings, topic, ckpt)

    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if "checkpoint skipped" in line]
    assert len(skipped) == 5, result.stderr
    assert any("version 2, this reader knows 1" in line for line in skipped)
    assert any("fails its checksum" in line for line in skipped)
    expected = reference(X, y, partitions)
    for p in range(partitions):
        payload = store.load(p).payload
        assert payload["learner"] == expected[p], f"partition {p}"
        assert payload["next_offset"] == 300


def test_consumer_process_read_only_directory_exits_2_before_reading(
        kafka_settings, make_topics, topic_name, tmp_path):
    """Injects: a checkpoint directory on a file system mounted read-only.
    Checks: the process stops at start with exit code 2 and one ERROR line
    saying the directory is not writable, no traceback; the checkpoint
    there is unchanged."""
    topic, _ = make_topics(topic_name, partitions=1)
    X, y = samples(100, seed=12)
    produce_arrays(kafka_settings, topic, X, y)
    with small_tmpfs(tmp_path / "fs") as mount:
        assert run_consumer(kafka_settings, topic, mount).returncode == 0
        before = (mount / "partition-0.json").read_bytes()
        remount(mount, "ro")
        result = run_consumer(kafka_settings, topic, mount)
        assert result.returncode == 2
        assert_stopped_cleanly(result.stderr, result.returncode, "is not writable")
        assert (mount / "partition-0.json").read_bytes() == before


def test_consumer_process_file_system_turned_read_only_stops_then_resumes(
        kafka_settings, make_topics, topic_name, tmp_path):
    """Injects: the checkpoint file system remounted read-only while the
    consumer process runs, then more samples. Checks: at its next checkpoint
    the process exits 1 with one ERROR line naming 'Read-only file system',
    no traceback; the checkpoint on disk is exactly the model of the
    samples before its offset; after the file
    system is writable again a new run ends with the exact model of an
    uninterrupted run."""
    _stop_on_refused_write_then_resume(
        kafka_settings, make_topics, topic_name, tmp_path,
        damage=lambda mount: remount(mount, "ro"),
        repair=lambda mount, _: remount(mount, "rw"),
        message="Read-only file system")


def test_consumer_process_full_disk_stops_then_resumes(
        kafka_settings, make_topics, topic_name, tmp_path):
    """Injects: the 64 KiB checkpoint file system filled to the last byte
    while the consumer process runs, then more samples. Checks: at its
    next checkpoint the process exits 1 with one ERROR line naming 'No
    space left on device', no traceback, no temporary file left; the
    checkpoint on disk is exactly the model of the samples before its
    offset; once space is freed a new run ends with
    the exact model of an uninterrupted run."""
    _stop_on_refused_write_then_resume(
        kafka_settings, make_topics, topic_name, tmp_path,
        damage=fill, repair=lambda _, filler: filler.unlink(),
        message="No space left on device")


def _stop_on_refused_write_then_resume(kafka_settings, make_topics, topic_name, tmp_path,
                                       damage, repair, message):
    """Steps: a running consumer checkpoints the first samples; the file
    system is damaged; more samples make it checkpoint again and stop; the
    damage is repaired and a new run finishes the stream."""
    topic, _ = make_topics(topic_name, partitions=1)
    X, y = samples(600, seed=13)
    with small_tmpfs(tmp_path / "fs") as mount:
        store = CheckpointStore(mount, None)
        produce_arrays(kafka_settings, topic, X[:200], y[:200])
        process = start_consumer(kafka_settings, topic, mount, "--checkpoint-every", "100",
                                 "--checkpoint-interval", "0.5")
        try:
            wait_for(lambda: _offset(store) == 200, process)
            good = store.load(0).payload
            _assert_consistent(good, X, y, at_least=200)
            undo = damage(mount)
            produce_arrays(kafka_settings, topic, X[200:400], y[200:400])
            output, _ = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)

        assert process.returncode == 1 and message in output, output
        _assert_consistent(store.load(0).payload, X, y, at_least=good["next_offset"])
        assert not [p.name for p in mount.iterdir() if p.name.startswith(".")]

        repair(mount, undo)
        produce_arrays(kafka_settings, topic, X[400:], y[400:])
        assert run_consumer(kafka_settings, topic, mount).returncode == 0
        payload = store.load(0).payload
        assert payload["next_offset"] == 600
        assert payload["learner"] == reference(X, y, 1)[0]
        assert np.isfinite(payload["learner"]["weights"]).all()
    assert_stopped_cleanly(output, process.returncode, message)




def _assert_consistent(payload: dict, X, y, at_least: int) -> None:
    """The checkpoint is exactly the model of its first ``next_offset`` samples."""
    seen = payload["next_offset"]
    assert seen >= at_least
    assert payload["learner"] == reference(X[:seen], y[:seen], 1)[0]


def _offset(store: CheckpointStore) -> int | None:
    payload = store.load(0).payload
    return payload["next_offset"] if payload else None
