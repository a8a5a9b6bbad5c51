"""Damaged checkpoint files and hostile file systems, at the checkpoint store.

Each test damages the files or the file system under a
:class:`CheckpointStore` and checks that the damage is detected and
handled as documented: a damaged latest checkpoint is passed over for the
previous one, a write the file system refuses raises a typed error and
leaves the last good checkpoint on disk, and no load ever returns a
payload other than one that was written.

The read-only and full-disk cases mount a small tmpfs (they need root or
CAP_SYS_ADMIN; they are skipped, saying why, where mounting is refused).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamtrain import artifact
from streamtrain.checkpoint import (
    CHECKPOINT_FORMAT,
    MODEL_FILE,
    CheckpointStore,
    CheckpointWriteError,
)
from streamtrain.errors import ArtifactError, ConfigError
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.model import read_model


def learner_payload(weights: list[float], bias: float, samples: int) -> dict:
    learner = make_learner(LearnerConfig(), len(weights))
    learner.weights, learner.bias, learner.samples = list(weights), bias, samples
    return learner.to_payload()


@contextlib.contextmanager
def small_tmpfs(mount_point: Path, size: str = "64k") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``mount_point`` for the block; skip the
    test (saying why) when this process may not mount."""
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                           str(mount_point)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {size} tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def remount(mount_point: Path, mode: str) -> None:
    """Remount a tmpfs read-only (``ro``) or read-write (``rw``)."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; return the filler."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as handle:
        for size in (4096, 512, 1):
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * size)
    return filler


@pytest.fixture
def store(tmp_path: Path) -> CheckpointStore:
    return CheckpointStore(tmp_path / "ckpt", "samples", clock=lambda: 1000.0)


def two_checkpoints(store: CheckpointStore) -> tuple[dict, dict]:
    """Write offsets 10 then 20 for partition 0; return (previous, latest)."""
    store.save(0, 10, learner_payload([1.0, -2.0, 0.5], 0.25, 10))
    previous = store.load(0).payload
    store.save(0, 20, learner_payload([1.5, -2.5, 0.75], 0.5, 20))
    return previous, store.load(0).payload


def rewrite_document(path: Path, **changes) -> None:
    """Rewrite the artifact envelope of ``path`` (payload and checksum kept)."""
    document = json.loads(path.read_bytes())
    document.update(changes)
    path.write_text(json.dumps(document, indent=1))


def test_checkpoint_store_every_truncation_of_latest_falls_back_to_previous(store):
    """Injects: the latest checkpoint cut at every length from 0 bytes to its
    last significant byte (only the final newline may go without loss).
    Checks: each load returns exactly the previous checkpoint and reports one
    skipped file."""
    previous, _ = two_checkpoints(store)
    path = store.latest_path(0)
    whole = path.read_bytes()
    for length in range(len(whole.rstrip(b"\n"))):
        path.write_bytes(whole[:length])
        loaded = store.load(0)
        assert loaded.payload == previous, length
        assert loaded.path == store.previous_path(0) and len(loaded.skipped) == 1


def test_checkpoint_store_any_flipped_bit_never_loads_a_wrong_payload(store):
    """Injects: one flipped bit in every byte of the latest checkpoint, one at
    a time. Checks: a load returns either the unchanged latest payload (a
    flip in insignificant bytes) or the previous one with the damage
    reported, never anything else; and almost every flip is detected."""
    previous, latest = two_checkpoints(store)
    path = store.latest_path(0)
    whole = path.read_bytes()
    detected = 0
    for position in range(len(whole)):
        damaged = bytearray(whole)
        damaged[position] ^= 1 << (position % 8)
        path.write_bytes(bytes(damaged))
        loaded = store.load(0)
        if loaded.skipped:
            assert loaded.payload == previous, position
            detected += 1
        else:
            assert loaded.payload == latest, position
    assert detected >= len(whole) - 2


@pytest.mark.parametrize("changes, message", [
    ({"version": 2}, "version 2, this reader knows 1"),
    ({"version": "1"}, "version '1'"),
    ({"format": "streamtrain.model"}, "expected 'streamtrain.checkpoint'"),
    ({"sha256": "0" * 64}, "fails its checksum"),
])
def test_checkpoint_store_wrong_envelope_falls_back_to_previous(store, changes, message):
    """Injects: a latest checkpoint of another version, format or checksum
    (payload intact). Checks: it is skipped with a message naming what was
    found and expected, and the previous checkpoint is loaded."""
    previous, _ = two_checkpoints(store)
    rewrite_document(store.latest_path(0), **changes)
    loaded = store.load(0)
    assert loaded.payload == previous
    assert message in loaded.skipped[0]


def test_checkpoint_store_file_of_another_partition_is_skipped(store):
    """Injects: partition 1's (valid) checkpoint copied over partition 0's.
    Checks: it is refused as belonging to partition 1, the previous
    checkpoint of partition 0 is used."""
    previous, _ = two_checkpoints(store)
    store.save(1, 99, learner_payload([9.0, 9.0, 9.0], 9.0, 99))
    shutil.copy(store.latest_path(1), store.latest_path(0))
    loaded = store.load(0)
    assert loaded.payload == previous
    assert "partition=1, expected topic=samples partition=0" in loaded.skipped[0]


def test_checkpoint_store_both_files_damaged_gives_no_checkpoint(store):
    """Injects: both the latest and the previous checkpoint truncated.
    Checks: no payload (the partition starts over from offset 0), both
    damages reported."""
    two_checkpoints(store)
    for path in (store.latest_path(0), store.previous_path(0)):
        path.write_bytes(path.read_bytes()[:50])
    loaded = store.load(0)
    assert loaded.payload is None and loaded.path is None and len(loaded.skipped) == 2


def test_checkpoint_store_damaged_latest_is_replaced_and_previous_kept(store):
    """Injects: a truncated latest checkpoint, then a new save. Checks: the
    damaged file is not promoted to ``.prev`` (the good previous stays) and
    the new checkpoint is the latest."""
    previous, _ = two_checkpoints(store)
    store.latest_path(0).write_bytes(b'{"format": "streamtrain.checkpoint", "ver')
    store.save(0, 30, learner_payload([3.0, 3.0, 3.0], 3.0, 30))
    assert store.load(0).payload["next_offset"] == 30
    assert artifact.read(store.previous_path(0), CHECKPOINT_FORMAT, 1) == previous


def test_checkpoint_store_missing_directory_is_created(tmp_path):
    """Injects: a checkpoint directory (and its parent) that do not exist.
    Checks: the store creates them and saves and loads normally."""
    store = CheckpointStore(tmp_path / "a" / "b" / "ckpt", "samples")
    store.save(0, 3, learner_payload([1.0], 0.0, 3))
    assert store.load(0).payload["next_offset"] == 3


def test_checkpoint_store_directory_removed_while_running_raises_write_error(store):
    """Injects: the checkpoint directory deleted after the store started.
    Checks: the next save raises CheckpointWriteError naming the file and
    the reason, and recreates nothing."""
    two_checkpoints(store)
    shutil.rmtree(store.directory)
    with pytest.raises(CheckpointWriteError, match=r"partition=0 offset=30 .*partition-0\.json"):
        store.save(0, 30, learner_payload([3.0, 3.0, 3.0], 3.0, 30))
    assert not store.directory.exists()


def test_checkpoint_store_directory_path_is_a_file_raises_config_error(tmp_path):
    """Injects: a regular file where the checkpoint directory should be.
    Checks: the store refuses to start with ConfigError naming the path."""
    (tmp_path / "ckpt").write_text("not a directory")
    with pytest.raises(ConfigError, match="ckpt cannot be created"):
        CheckpointStore(tmp_path / "ckpt", "samples")


def test_checkpoint_store_read_only_directory_refused_at_start_but_readable(tmp_path):
    """Injects: a checkpoint directory on a file system mounted read-only.
    Checks: a writing store refuses to start (ConfigError, 'not writable');
    a reading store still loads the checkpoint that is there."""
    with small_tmpfs(tmp_path / "fs") as mount:
        CheckpointStore(mount, "samples").save(0, 7, learner_payload([1.0], 0.0, 7))
        remount(mount, "ro")
        with pytest.raises(ConfigError, match="is not writable"):
            CheckpointStore(mount, "samples")
        assert CheckpointStore(mount, None).load(0).payload["next_offset"] == 7


def test_checkpoint_store_made_read_only_while_running_keeps_last_good(tmp_path):
    """Injects: the file system turned read-only after the store started.
    Checks: save raises CheckpointWriteError ('Read-only file system'), the
    latest checkpoint on disk is unchanged and still loads."""
    with small_tmpfs(tmp_path / "fs") as mount:
        store = CheckpointStore(mount, "samples")
        _, latest = two_checkpoints(store)
        remount(mount, "ro")
        with pytest.raises(CheckpointWriteError, match="Read-only file system"):
            store.save(0, 30, learner_payload([3.0, 3.0, 3.0], 3.0, 30))
        assert store.load(0).payload == latest


def test_checkpoint_store_full_disk_raises_and_keeps_last_good(tmp_path):
    """Injects: a 64 KiB tmpfs filled to the last byte after a first
    checkpoint, then a second save (no older ``.prev`` whose removal would
    free space). Checks: CheckpointWriteError ('No space left on device');
    the last good checkpoint still loads (now as ``.prev``); no temporary
    file is left; once space is freed the next save succeeds."""
    with small_tmpfs(tmp_path / "fs") as mount:
        store = CheckpointStore(mount, "samples")
        store.save(0, 10, learner_payload([1.0, -2.0, 0.5], 0.25, 10))
        latest = store.load(0).payload
        filler = fill(mount)
        with pytest.raises(CheckpointWriteError, match="No space left on device"):
            store.save(0, 30, learner_payload([3.0, 3.0, 3.0], 3.0, 30))
        assert store.load(0).payload == latest
        assert not [p for p in mount.iterdir() if p.name.startswith(".")]

        filler.unlink()
        store.save(0, 30, learner_payload([3.0, 3.0, 3.0], 3.0, 30))
        assert store.load(0).payload["next_offset"] == 30
        assert store.load(0).path == store.latest_path(0)


def test_checkpoint_store_full_disk_keeps_previous_combined_model(tmp_path):
    """Injects: a full file system when the combined model is rewritten.
    Checks: CheckpointWriteError naming model.json; the previous model.json
    is unchanged and verifies."""
    with small_tmpfs(tmp_path / "fs") as mount:
        store = CheckpointStore(mount, "samples")
        store.save(0, 2, learner_payload([2.0], 0.0, 2))
        store.write_combined("sgd")
        before = read_model(mount / MODEL_FILE)
        store.save(1, 2, learner_payload([4.0], 0.0, 2))
        fill(mount)
        with pytest.raises(CheckpointWriteError, match="model.json"):
            store.write_combined("sgd")
        after = read_model(mount / MODEL_FILE)
        assert after.weights.tolist() == before.weights.tolist() == [2.0]


def test_artifact_read_of_damaged_model_file_raises_artifact_error(tmp_path):
    """Injects: a model file truncated in the middle. Checks: read_model
    raises ArtifactError naming the file; no model is returned."""
    store = CheckpointStore(tmp_path, "samples")
    store.save(0, 2, learner_payload([2.0], 0.0, 2))
    store.write_combined("sgd")
    path = tmp_path / MODEL_FILE
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ArtifactError, match="model.json is not valid JSON"):
        read_model(path)
