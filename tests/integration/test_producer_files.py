"""The file source against a real broker."""

import io
import json

from producer.app import main
from streamtrain import wire
from tests.helpers import consume_all


def _run(kafka_settings, *argv):
    out, err = io.StringIO(), io.StringIO()
    argv = ["--bootstrap-servers", kafka_settings.bootstrap_servers, "--progress", "off", *argv]
    code = main(argv, stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    return code, (json.loads(lines[-1]) if lines else None), err.getvalue()


def _csv(tmp_path, rows):
    path = tmp_path / "data.csv"
    path.write_text("a,b,y\n" + "".join(rows))
    return path


def test_producer_file_rows_published_in_order(kafka_settings, topic_name, tmp_path):
    path = _csv(tmp_path, [f"{i},{2 * i},{3 * i}\n" for i in range(100)])
    code, report, _ = _run(
        kafka_settings, "--topic", topic_name, "--source", "file", "--file", str(path),
        "--partitions", "1",
    )
    assert code == 0 and report["acknowledged"] == 100
    samples = [wire.decode(r.value, 2) for r in consume_all(kafka_settings, topic_name, 1, 100)]
    assert [s.id for s in samples] == list(range(100))
    assert [s.x.tolist() for s in samples[:2]] == [[0, 0], [1, 2]] and samples[5].y == 15


def test_producer_file_bad_row_fails_with_line_number(kafka_settings, topic_name, tmp_path):
    path = _csv(tmp_path, ["1,2,3\n"] * 5 + ["1,2,abc\n", "1,2,3\n"])
    code, report, err = _run(
        kafka_settings, "--topic", topic_name, "--source", "file", "--file", str(path),
        "--partitions", "1",
    )
    assert code == 2
    assert "data.csv line 7: column 'y' is not a number: 'abc'" in err
    assert report["input_error"].endswith("data.csv line 7: column 'y' is not a number: 'abc'")
    assert report["sent"] == report["acknowledged"] == 5


def test_producer_file_bad_rows_skipped_and_counted(kafka_settings, topic_name, tmp_path):
    path = _csv(tmp_path, ["1,2,3\n", "1,x,3\n", "1,2\n", "4,5,6\n"])
    code, report, _ = _run(
        kafka_settings, "--topic", topic_name, "--source", "file", "--file", str(path),
        "--skip-bad-rows", "--partitions", "1",
    )
    assert code == 0
    assert (report["acknowledged"], report["skipped_rows"]) == (2, 2)
    samples = [wire.decode(r.value, 2) for r in consume_all(kafka_settings, topic_name, 1, 2)]
    assert [(s.id, s.y) for s in samples] == [(0, 3.0), (1, 6.0)]


def test_producer_file_dimension_mismatch_exits_2(kafka_settings, topic_name, tmp_path):
    path = _csv(tmp_path, ["1,2,3\n"])
    code, _, err = _run(
        kafka_settings, "--topic", topic_name, "--source", "file", "--file", str(path),
        "--dim", "5",
    )
    assert code == 2 and "has 2 feature columns" in err
