"""The per-partition checkpoint store of the online learner.

Layout of a checkpoint directory (shared by every member of a consumer
group, e.g. a volume)::

    DIR/partition-<p>.json        latest checkpoint of partition p
    DIR/partition-<p>.prev.json   the good checkpoint before it
    DIR/model.json                the combined model (streamtrain.model)

Each checkpoint is a ``streamtrain.checkpoint`` artifact, version 1 (see
:mod:`streamtrain.artifact`: indented JSON, SHA-256 checksum, never
pickle), payload::

    {
      "topic": str, "partition": int,
      "next_offset": int,          # the next offset to read: last applied + 1
      "written_at": float,         # Unix seconds, for people
      "learner": {...}             # streamtrain.learners state payload
    }

Guarantees:

- A write is atomic (write, fsync, rename, fsync the directory). Before it,
  the latest file is renamed to ``.prev`` if (and only if) it verifies, so
  a good previous checkpoint always survives a damaged latest one. A crash
  between the two renames leaves only ``.prev``, which :meth:`load` uses.
- :meth:`load` returns the latest checkpoint that verifies; a missing,
  truncated or corrupt latest one is logged, reported in ``skipped`` and
  the previous one is used.
- A write whose ``next_offset`` is below the one on disk is refused with
  :class:`StaleCheckpointError`: a member that lost its partition without
  noticing (a zombie) cannot roll back its successor's progress. It can
  still write an equal or higher offset from a diverged history if both
  members run at once; Kafka's group protocol keeps that window short.
- A store that writes (``topic`` given) checks at start that its directory
  exists or can be created and is writable, and raises
  :class:`~streamtrain.errors.ConfigError` otherwise. A write that fails
  later (directory removed or made read-only, disk full) raises
  :class:`CheckpointWriteError` naming the file and the system's reason;
  the files on disk then still hold the last good checkpoint (as latest,
  or as ``.prev`` if the failure came after the rename).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from streamtrain import artifact
from streamtrain.errors import ArtifactError, ConfigError, StreamtrainError
from streamtrain.model import LinearModel, write_model

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "streamtrain.checkpoint"
CHECKPOINT_VERSION = 1
MODEL_FILE = "model.json"


class StaleCheckpointError(StreamtrainError):
    """A checkpoint would go back behind the one already on disk."""


class CheckpointWriteError(StreamtrainError):
    """A checkpoint or the combined model could not be written (missing or
    read-only directory, full disk, ...). The last good checkpoint is still
    on disk; the state in memory since then is not."""


@dataclass(frozen=True)
class Loaded:
    """The result of loading one partition's checkpoint.

    ``payload`` is None when no usable checkpoint exists; ``skipped`` lists
    a description of every damaged file passed over on the way.
    """

    payload: dict[str, Any] | None
    path: Path | None
    skipped: list[str] = field(default_factory=list)


class CheckpointStore:
    """Checkpoints of the partitions of one topic in one directory.

    With ``topic=None`` (for reading only) checkpoints of any topic are accepted.

    :raises ConfigError: if the directory cannot be created or, for a store
        that writes (``topic`` given), is not writable.
    """

    def __init__(self, directory: Path, topic: str | None, clock: Callable[[], float] = time.time):
        self.directory = Path(directory)
        self.topic = topic
        self.clock = clock
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(
                f"checkpoint directory {self.directory} cannot be created: "
                f"{error.strerror or error}"
            ) from None
        if topic is not None and not os.access(self.directory, os.W_OK | os.X_OK):
            raise ConfigError(
                f"checkpoint directory {self.directory} is not writable (read-only file "
                f"system or permissions); a writable directory is needed"
            )

    def latest_path(self, partition: int) -> Path:
        return self.directory / f"partition-{partition}.json"

    def previous_path(self, partition: int) -> Path:
        return self.directory / f"partition-{partition}.prev.json"

    def load(self, partition: int) -> Loaded:
        """The newest checkpoint of ``partition`` that verifies."""
        skipped = []
        for path in (self.latest_path(partition), self.previous_path(partition)):
            if not path.exists():
                continue
            try:
                return Loaded(self._read(path, partition), path, skipped)
            except ArtifactError as error:
                log.error("checkpoint skipped topic=%s partition=%d: %s",
                          self.topic, partition, error)
                skipped.append(str(error))
        return Loaded(None, None, skipped)

    def save(self, partition: int, next_offset: int, learner: dict[str, Any]) -> Path:
        """Write the checkpoint of ``partition`` atomically, keeping the previous.

        :raises StaleCheckpointError: if the latest checkpoint on disk has a
            higher ``next_offset``; nothing is written then.
        :raises CheckpointWriteError: if the file system refuses the write;
            the last good checkpoint stays on disk (latest or ``.prev``).
        """
        latest = self.latest_path(partition)
        on_disk = self._verified_or_none(latest, partition)
        if on_disk is not None and on_disk["next_offset"] > next_offset:
            raise StaleCheckpointError(
                f"checkpoint of topic={self.topic} partition={partition} on disk is at "
                f"offset {on_disk['next_offset']}, refusing to go back to {next_offset}"
            )
        payload = {
            "topic": self.topic, "partition": partition, "next_offset": next_offset,
            "written_at": self.clock(), "learner": learner,
        }
        try:
            if on_disk is not None:
                latest.replace(self.previous_path(partition))
            artifact.write(latest, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, payload)
        except OSError as error:
            raise CheckpointWriteError(
                f"cannot write the checkpoint of topic={self.topic} partition={partition} "
                f"offset={next_offset} to {latest}: {error.strerror or error}"
            ) from None
        return latest

    def partitions(self) -> list[int]:
        """Partitions that have a checkpoint file (latest or previous)."""
        found = set()
        for path in self.directory.glob("partition-*.json"):
            number = path.name.split("-", 1)[1].split(".", 1)[0]
            if number.isdigit():
                found.add(int(number))
        return sorted(found)

    def load_all(self) -> dict[int, Loaded]:
        return {partition: self.load(partition) for partition in self.partitions()}

    def write_combined(self, method: str) -> LinearModel | None:
        """Write ``DIR/model.json``: the sample-weighted average of every
        partition model in the directory. None (nothing written) if no
        partition has learned a sample yet.

        :raises CheckpointWriteError: if the file system refuses the write;
            the previous ``model.json`` stays as it was.
        """
        loaded = {p: r.payload for p, r in self.load_all().items() if r.payload is not None}
        model = combine(loaded, method)
        if model is not None:
            path = self.directory / MODEL_FILE
            try:
                write_model(path, model)
            except OSError as error:
                raise CheckpointWriteError(
                    f"cannot write the combined model to {path}: {error.strerror or error}"
                ) from None
        return model

    def _read(self, path: Path, partition: int) -> dict[str, Any]:
        payload = artifact.read(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION)
        topic_ok = self.topic is None or payload.get("topic") == self.topic
        if not topic_ok or payload.get("partition") != partition:
            raise ArtifactError(
                f"{path} holds topic={payload.get('topic')} partition="
                f"{payload.get('partition')}, expected topic={self.topic} partition={partition}"
            )
        return payload

    def _verified_or_none(self, path: Path, partition: int) -> dict[str, Any] | None:
        if not path.exists():
            return None
        try:
            return self._read(path, partition)
        except ArtifactError as error:
            log.warning("latest checkpoint is damaged and will not be kept as previous: %s",
                        error)
            return None


def combine(payloads: dict[int, dict[str, Any]], method: str) -> LinearModel | None:
    """Sample-weighted average of the partition models in ``payloads``
    (partition -> checkpoint payload); None if they hold no sample."""
    counts = {p: int(c["learner"]["samples"]) for p, c in payloads.items()}
    total = sum(counts.values())
    if total == 0:
        return None
    dim = len(next(iter(payloads.values()))["learner"]["weights"])
    weights, bias = np.zeros(dim), 0.0
    for partition in sorted(payloads):
        learner = payloads[partition]["learner"]
        share = counts[partition] / total
        weights += share * np.array(learner["weights"], dtype=np.float64)
        bias += share * float(learner["bias"])
    metadata = {
        "partitions": {
            str(p): {"samples": counts[p], "next_offset": payloads[p]["next_offset"]}
            for p in sorted(payloads)
        },
        "topic": next(iter(payloads.values()))["topic"],
    }
    return LinearModel(weights, bias, total, method, metadata)
