import pytest

from streamtrain import localkafka


@pytest.mark.parametrize(
    "line, major",
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_392"', 8),
     ('openjdk version "21" 2023-09-19', 21), ("garbage", None)],
)
def test_java_major_version_is_read_from_the_version_line(line, major):
    assert localkafka._java_major(line) == major


def test_pom_brings_the_logging_backend_and_the_tools():
    pom = localkafka._pom()
    for artifact in ("kafka_2.13", "kafka-tools", "log4j-core", "log4j-api", "log4j-slf4j-impl"):
        assert f"<artifactId>{artifact}</artifactId>" in pom
    assert f"<version>{localkafka.KAFKA_VERSION}</version>" in pom


def test_missing_maven_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAMTRAIN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(localkafka.LocalKafkaError, match="Maven"):
        localkafka.resolve_jars()


def test_missing_java_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(localkafka.LocalKafkaError, match="Java"):
        localkafka.java_command()
