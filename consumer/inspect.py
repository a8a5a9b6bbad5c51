"""``python -m consumer inspect``: the partition models and the combined
model of a checkpoint directory, as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamtrain.checkpoint import CheckpointStore, combine


def describe(directory: Path) -> dict[str, Any]:
    """Per partition: model, samples, next offset, losses and which file was
    used (damaged files skipped are listed); plus the combined model."""
    store = CheckpointStore(directory, topic=None)
    partitions, payloads = {}, {}
    for partition, loaded in store.load_all().items():
        entry: dict[str, Any] = {"skipped": loaded.skipped}
        if loaded.payload is not None:
            payloads[partition] = loaded.payload
            entry.update(_partition(loaded.payload), source=str(loaded.path))
        partitions[str(partition)] = entry
    method = next((p["learner"]["config"]["kind"] for p in payloads.values()), "")
    combined = combine(payloads, method) if payloads else None
    return {
        "checkpoint_dir": str(directory),
        "partitions": partitions,
        "combined": None if combined is None else combined.to_payload(),
    }


def _partition(payload: dict[str, Any]) -> dict[str, Any]:
    learner = payload["learner"]
    samples = learner["samples"]
    return {
        "topic": payload["topic"],
        "next_offset": payload["next_offset"],
        "samples": samples,
        "weights": learner["weights"],
        "bias": learner["bias"],
        "mean_squared_error": learner["squared_error_sum"] / samples if samples else None,
        "loss_smoothed": learner["loss_smoothed"],
        "learner": learner["config"],
        "written_at": payload["written_at"],
    }


def main(directory: Path) -> int:
    if not Path(directory).is_dir():
        print(json.dumps({"error": f"{directory} is not a directory"}))
        return 2
    print(json.dumps(describe(Path(directory)), indent=2))
    return 0
