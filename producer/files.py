"""Samples from a CSV or JSON Lines file with a named target column.

The columns are known before the first sample: a CSV file's header row, or
the keys of a JSON Lines file's first object. The features are the named
``feature_columns``, else every column but the target and the key column,
in the file's order.

A row is malformed when a needed column is missing or empty, a value is
not a number or not finite, or (CSV) the row has another number of fields
than the header; blank lines are ignored. A malformed row raises
:class:`InputError` naming the file, the line and the value, e.g.
``data.csv line 7: column 'y' is not a number: 'abc'``; with
``skip_bad_rows`` it is logged (the first :data:`LOGGED_SKIPS` of them),
counted in ``skipped_rows`` and gets no sample index.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from producer.errors import InputError
from producer.sources import Block

log = logging.getLogger(__name__)

LOGGED_SKIPS = 20
"""Skipped rows logged one by one; later ones are only counted."""

_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class _BadRow(Exception):
    """A row cannot be a sample; the message says why (no file, no line)."""


def detect_format(path: Path, given: str | None) -> str:
    """``given`` if set, else the format the extension implies.

    :raises InputError: if neither names csv or jsonl.
    """
    if given is not None:
        return str(getattr(given, "value", given))
    found = _FORMATS.get(Path(path).suffix.lower())
    if found is None:
        raise InputError(
            f"{path}: cannot tell the format from the extension "
            f"(expected .csv, .jsonl or .ndjson); pass --file-format csv|jsonl"
        )
    return found


class FileSource:
    """Blocks of samples read from one file, front to back, once.

    :raises InputError: from the constructor if the file cannot be opened,
        has no header or first object, or lacks a named column.
    """

    def __init__(
        self,
        path: Path,
        *,
        file_format: str | None = None,
        target_column: str = "y",
        feature_columns: list[str] | None = None,
        key_field: str | None = None,
        skip_bad_rows: bool = False,
    ) -> None:
        self.path = Path(path)
        self.format = detect_format(self.path, file_format)
        self.target = target_column
        self.key_field = key_field
        self.skip_bad_rows = skip_bad_rows
        self.skipped_rows = 0
        self._next_id = 0
        self._pending: InputError | None = None
        self._handle = self._open()
        columns, self._rows = self._csv() if self.format == "csv" else self._jsonl()
        self.features = self._choose_features(columns, feature_columns)
        self.dim = len(self.features)

    def next_block(self, n: int) -> Block | None:
        """Up to ``n`` further valid rows as samples; None at end of file.

        :raises InputError: for a malformed row (unless skipped), after the
            valid rows before it were returned by an earlier call.
        """
        X = np.empty((n, self.dim))
        y = np.empty(n)
        keys: list[bytes] | None = [] if self.key_field is not None else None
        count = 0
        self._raise_pending()
        for line, row in self._rows:
            try:
                y[count], X[count], key = self._parse(row)
            except _BadRow as error:
                self._bad_row(line, str(error))
                if self._pending is not None and count:
                    break
                self._raise_pending()
                continue
            if keys is not None:
                keys.append(key)
            count += 1
            if count == n:
                break
        if count == 0:
            self.close()
            return None
        block = Block(X[:count], y[:count], self._next_id, keys)
        self._next_id += count
        return block

    def close(self) -> None:
        self._handle.close()

    def _open(self) -> Any:
        try:
            return open(self.path, newline="", encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot read {self.path}: {error.strerror}") from None

    def _choose_features(self, columns: list[str], named: list[str] | None) -> list[str]:
        needed = [self.target] + (named or []) + ([self.key_field] if self.key_field else [])
        missing = [name for name in needed if name not in columns]
        if missing and self.format == "csv":
            raise InputError(
                f"{self.path}: no column {missing[0]!r} in the header (columns: {columns})"
            )
        if missing:
            raise InputError(
                f"{self.path} line 1: no column {missing[0]!r} (columns: {columns})"
            )
        features = named or [c for c in columns if c not in (self.target, self.key_field)]
        if not features:
            raise InputError(f"{self.path}: no feature column besides {self.target!r}")
        return features

    def _csv(self) -> tuple[list[str], Iterator[tuple[int, Any]]]:
        """The header row and an iterator of the rows after it."""
        reader = csv.reader(self._handle)
        header = next(self._csv_records(reader), None)
        if header is None:
            raise InputError(f"{self.path} is empty: a header row was expected")
        return header[1], self._csv_rows(reader, header[1])

    def _csv_records(self, reader: Any) -> Iterator[tuple[int, list[str]]]:
        """Non-empty records with the line they end on."""
        try:
            for fields in reader:
                if fields:
                    yield reader.line_num, fields
        except csv.Error as error:
            raise InputError(f"{self.path} line {reader.line_num}: {error}") from None

    def _csv_rows(self, reader: Any, header: list[str]) -> Iterator[tuple[int, Any]]:
        for line, fields in self._csv_records(reader):
            if len(fields) != len(header):
                reason = f"has {len(fields)} fields, the header has {len(header)}"
                yield line, _Malformed(reason)
            else:
                yield line, dict(zip(header, fields))

    def _jsonl(self) -> tuple[list[str], Iterator[tuple[int, Any]]]:
        """The first object's keys and an iterator of every row."""
        rows = self._jsonl_rows()
        first = next(rows, None)
        if first is None:
            raise InputError(f"{self.path} is empty: a JSON object per line was expected")
        if isinstance(first[1], _Malformed):
            raise InputError(f"{self.path} line {first[0]}: {first[1].reason}")
        return list(first[1]), _prepend(first, rows)

    def _jsonl_rows(self) -> Iterator[tuple[int, Any]]:
        for number, text in enumerate(self._handle, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except ValueError as error:
                yield number, _Malformed(f"is not valid JSON: {error}")
                continue
            if not isinstance(row, dict):
                yield number, _Malformed(f"is not a JSON object: {text.strip()[:80]!r}")
                continue
            yield number, row

    def _parse(self, row: Any) -> tuple[float, np.ndarray, bytes | None]:
        if isinstance(row, _Malformed):
            raise _BadRow(row.reason)
        target = self._number(row, self.target)
        features = np.array([self._number(row, name) for name in self.features])
        key = self._key(row) if self.key_field is not None else None
        return target, features, key

    def _number(self, row: dict, name: str) -> float:
        if name not in row or row[name] in ("", None):
            raise _BadRow(f"column {name!r} is missing or empty")
        value = row[name]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _BadRow(f"column {name!r} is not a number: {json.dumps(value)}")
        if isinstance(value, str) and self.format == "jsonl":
            raise _BadRow(f"column {name!r} is not a number: {json.dumps(value)}")
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise _BadRow(f"column {name!r} is not a number: {value!r}") from None
        if not math.isfinite(number):
            raise _BadRow(f"column {name!r} is not finite: {value!r}")
        return number

    def _key(self, row: dict) -> bytes:
        value = row.get(self.key_field)
        if value is None or value == "":
            raise _BadRow(f"key column {self.key_field!r} is missing or empty")
        return (value if isinstance(value, str) else json.dumps(value)).encode()

    def _raise_pending(self) -> None:
        """Raise the error of a bad row once the rows before it are out."""
        if self._pending is not None:
            self.close()
            raise self._pending

    def _bad_row(self, line: int, reason: str) -> None:
        message = f"{self.path} line {line}: {reason}"
        if not self.skip_bad_rows:
            self._pending = InputError(message)
            return
        self.skipped_rows += 1
        if self.skipped_rows <= LOGGED_SKIPS:
            log.warning("skipped %s", message)
        if self.skipped_rows == LOGGED_SKIPS:
            log.warning("further skipped rows of %s are counted, not logged", self.path)


class _Malformed:
    """Stands in for a row that could not even be split into columns."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
