"""The models directory: numbered versions and an atomic ``latest`` link.

Layout::

    models/
      model-000001.json      streamtrain.model artifacts, never rewritten
      model-000002.json
      latest.json -> model-000002.json    (relative symbolic link)

Guarantees:

- A version file appears only complete: it is written (with
  :func:`streamtrain.model.write_model`: write, fsync, rename) under a
  hidden staging name, then hard-linked to its final name, which fails
  rather than overwrite if another run took that number (the next number
  is then tried).
- ``latest.json`` is switched by creating a new link beside it and
  renaming it over the old one (``os.replace``), so a reader always finds
  either the previous or the new version, never a partial file. Readers
  open ``latest.json`` like any model file
  (``streamtrain.model.read_model``).
- After a switch, versions older than the newest ``keep + 1`` are deleted;
  the one ``latest.json`` points to is never deleted.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from streamtrain.artifact import fsync_dir
from streamtrain.model import LinearModel, write_model

log = logging.getLogger(__name__)

LATEST = "latest.json"
_VERSION = re.compile(r"^model-(\d{6,})\.json$")


class ModelStore:
    """Versions of the batch model in ``directory`` (created if missing)."""

    def __init__(self, directory: Path, keep: int = 10) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        self.directory = Path(directory)
        self.keep = keep

    def versions(self) -> list[tuple[int, Path]]:
        """Existing versions, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for entry in self.directory.iterdir():
            match = _VERSION.match(entry.name)
            if match:
                found.append((int(match.group(1)), entry))
        return sorted(found)

    def latest(self) -> Path | None:
        """The file ``latest.json`` points to, or None."""
        link = self.directory / LATEST
        return link.resolve() if link.exists() else None

    def publish(self, model: LinearModel) -> Path:
        """Write ``model`` as the next version, point latest at it, prune."""
        self.directory.mkdir(parents=True, exist_ok=True)
        staging = self.directory / f".staging-{os.getpid()}.json"
        write_model(staging, model)
        try:
            path = self._claim(staging)
        finally:
            staging.unlink(missing_ok=True)
        fsync_dir(self.directory)
        self._point_latest(path)
        log.info("published model %s (%d samples)", path, model.samples)
        self.prune()
        return path

    def _claim(self, staging: Path) -> Path:
        """Hard-link ``staging`` to the first free version number."""
        versions = self.versions()
        number = versions[-1][0] + 1 if versions else 1
        while True:
            target = self.directory / f"model-{number:06d}.json"
            try:
                os.link(staging, target)
                return target
            except FileExistsError:
                number += 1

    def _point_latest(self, path: Path) -> None:
        tmp = self.directory / f".{LATEST}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(path.name, tmp)
        os.replace(tmp, self.directory / LATEST)
        fsync_dir(self.directory)

    def prune(self) -> list[Path]:
        """Delete versions beyond the newest ``keep + 1``; return them."""
        current = self.latest()
        doomed = [p for _, p in self.versions()[: -(self.keep + 1)] if p.resolve() != current]
        for path in doomed:
            path.unlink(missing_ok=True)
            log.info("pruned old model %s", path)
        return doomed
