import logging

import numpy as np
import pytest

from producer.errors import InputError
from producer.files import FileSource


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _read_all(source, n=2):
    blocks = []
    while (block := source.next_block(n)) is not None:
        blocks.append(block)
    return blocks


CSV = "a,b,y\n1,2,3\n4,5,6\n\n7,8,9\n"


def test_files_csv_rows_become_samples_with_consecutive_ids(tmp_path):
    blocks = _read_all(FileSource(_write(tmp_path, "data.csv", CSV)))
    assert [b.first_id for b in blocks] == [0, 2]
    assert np.concatenate([b.X for b in blocks]).tolist() == [[1, 2], [4, 5], [7, 8]]
    assert np.concatenate([b.y for b in blocks]).tolist() == [3, 6, 9]


def test_files_bad_value_raises_with_file_line_and_value(tmp_path):
    path = _write(tmp_path, "data.csv", "a,y\n" + "1,2\n" * 5 + "1,abc\n")
    source = FileSource(path)
    with pytest.raises(InputError) as caught:
        _read_all(source, n=100)
    assert str(caught.value) == f"{path} line 7: column 'y' is not a number: 'abc'"


def test_files_skip_bad_rows_counts_them_and_keeps_the_rest(tmp_path, caplog):
    text = "a,y\n1,2\n1,abc\n1\n1,nan\n3,4\n,5\n"
    source = FileSource(_write(tmp_path, "data.csv", text), skip_bad_rows=True)
    with caplog.at_level(logging.WARNING):
        blocks = _read_all(source, n=10)
    assert np.concatenate([b.y for b in blocks]).tolist() == [2, 4]
    assert source.skipped_rows == 4
    assert "line 3: column 'y' is not a number" in caplog.text
    assert "line 4: has 1 fields, the header has 2" in caplog.text
    assert "line 5: column 'y' is not finite" in caplog.text


def test_files_jsonl_rows_become_samples(tmp_path):
    text = '{"x1": 1, "x2": 2.5, "y": 3}\n\n{"x2": 4, "x1": 5, "y": -1}\n'
    source = FileSource(_write(tmp_path, "data.jsonl", text))
    (block,) = _read_all(source, n=10)
    assert source.features == ["x1", "x2"]
    assert block.X.tolist() == [[1, 2.5], [5, 4]] and block.y.tolist() == [3, -1]


def test_files_jsonl_string_value_raises_with_line(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"a": 1, "y": 2}\n{"a": "1", "y": 2}\n')
    with pytest.raises(InputError, match=r"d.jsonl line 2: column 'a' is not a number: \"1\""):
        _read_all(FileSource(path))


def test_files_jsonl_broken_json_is_skipped_when_asked(tmp_path):
    path = _write(tmp_path, "d.jsonl", '{"a": 1, "y": 2}\n{"a": 1,\n{"a": 3, "y": 4}\n')
    source = FileSource(path, skip_bad_rows=True)
    blocks = _read_all(source)
    assert np.concatenate([b.y for b in blocks]).tolist() == [2, 4]
    assert source.skipped_rows == 1


def test_files_named_features_and_target_select_columns(tmp_path):
    path = _write(tmp_path, "d.csv", "id,t,a,b,c\nu1,1,2,3,4\n")
    source = FileSource(path, target_column="t", feature_columns=["c", "a"], key_field="id")
    (block,) = _read_all(source)
    assert block.X.tolist() == [[4, 2]] and block.y.tolist() == [1]
    assert block.keys == [b"u1"]


def test_files_default_features_leave_out_key_column(tmp_path):
    source = FileSource(_write(tmp_path, "d.csv", "user,a,y\nu,1,2\n"), key_field="user")
    assert source.features == ["a"] and source.dim == 1


def test_files_missing_target_column_raises_naming_it(tmp_path):
    with pytest.raises(InputError, match="no column 'y' in the header"):
        FileSource(_write(tmp_path, "d.csv", "a,b\n1,2\n"))


def test_files_unknown_extension_needs_explicit_format(tmp_path):
    path = _write(tmp_path, "d.txt", "a,y\n1,2\n")
    with pytest.raises(InputError, match="--file-format"):
        FileSource(path)
    assert FileSource(path, file_format="csv").dim == 1


def test_files_empty_file_raises(tmp_path):
    with pytest.raises(InputError, match="is empty"):
        FileSource(_write(tmp_path, "d.csv", ""))


def test_files_rows_before_a_bad_row_come_out_before_the_error(tmp_path):
    path = _write(tmp_path, "data.csv", "a,y\n" + "1,2\n" * 5 + "1,abc\n" + "1,2\n")
    source = FileSource(path)
    assert len(source.next_block(100)) == 5
    with pytest.raises(InputError, match="line 7"):
        source.next_block(100)
