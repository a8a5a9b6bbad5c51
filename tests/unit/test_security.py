"""Security basics without a broker: loading files never executes code,
secrets never show in reprs, dumps or ``--help``, and the Kafka client
settings (SASL, SSL) reach the kafka-python clients."""

from __future__ import annotations

import ast
import io
import pickle
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from batch_job.__main__ import main as batch_main
from batch_job.settings import BatchSettings
from batch_job.training import load_online_model
from consumer import inspect
from consumer.__main__ import main as consumer_main
from consumer.settings import ConsumerSettings
from producer.app import main as producer_main
from producer.settings import ProducerSettings
from streamtrain import artifact
from streamtrain.checkpoint import MODEL_FILE, CheckpointStore
from streamtrain.clients import make_consumer, make_producer
from streamtrain.errors import ArtifactError
from streamtrain.learners import LearnerConfig, make_learner
from streamtrain.model import read_model
from streamtrain.settings import KafkaSettings, kafka_client_config

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streamtrain", "consumer", "producer", "batch_job")
SASL_SECRET = "sasl-Secret-6b1e"
SSL_SECRET = "ssl-Secret-93fa"
SECRET_ENV = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "alice", "KAFKA_SASL_PASSWORD": SASL_SECRET,
    "KAFKA_SSL_CAFILE": "/etc/ca.pem", "KAFKA_SSL_CERTFILE": "/etc/client.pem",
    "KAFKA_SSL_KEYFILE": "/etc/client.key", "KAFKA_SSL_PASSWORD": SSL_SECRET,
}


class CreatesFile:
    """Unpickling this object opens (creates) ``path`` for writing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def armed_pickle(marker: Path) -> bytes:
    """A pickle whose loading creates ``marker``; proved live on a control
    path first, so a test that sees no marker knows nothing ran."""
    control = marker.with_name(marker.name + ".control")
    pickle.loads(pickle.dumps(CreatesFile(control))).close()
    assert control.exists()
    return pickle.dumps({"payload": CreatesFile(marker)}, protocol=pickle.HIGHEST_PROTOCOL)


def learner_payload(samples: int) -> dict:
    learner = make_learner(LearnerConfig(), 2)
    learner.samples = samples
    return learner.to_payload()


def test_artifact_loads_of_pickle_is_refused_without_running_it(tmp_path):
    """Injects: a live pickle as artifact bytes. Checks: ArtifactError
    ('not valid JSON'), and the pickle's file was never created."""
    marker = tmp_path / "executed"
    with pytest.raises(ArtifactError, match="not valid JSON"):
        artifact.loads(armed_pickle(marker), "streamtrain.checkpoint", 1)
    assert not marker.exists()


def test_checkpoint_store_pickle_as_latest_falls_back_without_running_it(tmp_path):
    """Injects: a live pickle written over the latest checkpoint (and, in a
    second partition, over both files). Checks: partition 0 loads its
    previous checkpoint, partition 1 has none; the pickle never ran."""
    marker = tmp_path / "executed"
    store = CheckpointStore(tmp_path / "ckpt", "samples")
    for partition in (0, 1):
        store.save(partition, 5, learner_payload(5))
        store.save(partition, 9, learner_payload(9))
    payload = armed_pickle(marker)
    store.latest_path(0).write_bytes(payload)
    store.latest_path(1).write_bytes(payload)
    store.previous_path(1).write_bytes(payload)

    assert store.load(0).payload["next_offset"] == 5
    assert store.load(1).payload is None and len(store.load(1).skipped) == 2
    assert not marker.exists()


def test_model_readers_refuse_pickle_without_running_it(tmp_path):
    """Injects: a live pickle as model.json and as a partition checkpoint.
    Checks: read_model raises ArtifactError, the batch job's online-model
    loader returns None, ``consumer inspect`` lists the file as skipped;
    the pickle never ran."""
    marker = tmp_path / "executed"
    payload = armed_pickle(marker)
    (tmp_path / MODEL_FILE).write_bytes(payload)
    (tmp_path / "partition-0.json").write_bytes(payload)

    with pytest.raises(ArtifactError):
        read_model(tmp_path / MODEL_FILE)
    assert load_online_model(str(tmp_path / MODEL_FILE), 2) is None
    report = inspect.describe(tmp_path)
    assert report["combined"] is None
    assert "not valid JSON" in report["partitions"]["0"]["skipped"][0]
    assert not marker.exists()


def _imports_and_calls(tree: ast.AST) -> tuple[set[str], set[str]]:
    imported, called = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            called.add(name)
            if any(k.arg == "allow_pickle" for k in node.keywords):
                called.add("allow_pickle")
    return imported, called


def test_services_source_uses_no_code_executing_deserializer():
    """Injects: nothing; reads the source of every service package.
    Checks: no module imports pickle, marshal, shelve, dill, joblib or
    cloudpickle, and none calls eval, exec or numpy loading with
    allow_pickle."""
    forbidden_imports = {"pickle", "marshal", "shelve", "dill", "joblib", "cloudpickle"}
    forbidden_calls = {"eval", "exec", "allow_pickle"}
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            imported, called = _imports_and_calls(ast.parse(path.read_text()))
            bad = (imported & forbidden_imports) | (called & forbidden_calls)
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}: {sorted(bad)}")
    assert offenders == []


@pytest.mark.parametrize("cls", [KafkaSettings, ConsumerSettings, ProducerSettings,
                                 BatchSettings])
def test_settings_secrets_never_in_repr_str_or_dump(cls, monkeypatch):
    """Injects: SASL and SSL passwords through the environment. Checks: the
    settings' repr, str, JSON and dict dumps hold neither secret, while the
    client configuration built from them holds both, with every other SASL
    and SSL setting."""
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    settings = cls()
    shown = [repr(settings), str(settings), settings.model_dump_json(),
             str(settings.model_dump())]
    for text in shown:
        assert SASL_SECRET not in text and SSL_SECRET not in text
    config = kafka_client_config(settings)
    assert config["sasl_plain_password"] == SASL_SECRET
    assert config["ssl_password"] == SSL_SECRET
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert config["sasl_plain_username"] == "alice"
    assert (config["ssl_cafile"], config["ssl_certfile"], config["ssl_keyfile"]) == (
        "/etc/ca.pem", "/etc/client.pem", "/etc/client.key")


@pytest.mark.parametrize("factory", [make_producer, make_consumer])
def test_client_factories_pass_sasl_and_ssl_settings_to_kafka_python(factory):
    """Injects: settings with SASL_SSL, a mechanism, user, passwords and
    SSL files (no connection is made: the API version is given). Checks:
    the kafka-python client's own config holds every one of them."""
    settings = KafkaSettings(
        bootstrap_servers="127.0.0.1:1", security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN", sasl_username="alice", sasl_password=SASL_SECRET,
        ssl_cafile="/etc/ca.pem", ssl_password=SSL_SECRET)
    client = factory(settings, api_version=(4, 0))
    try:
        config = client.config
        assert config["security_protocol"] == "SASL_SSL"
        assert config["sasl_mechanism"] == "PLAIN"
        assert config["sasl_plain_username"] == "alice"
        assert config["sasl_plain_password"] == SASL_SECRET
        assert config["ssl_password"] == SSL_SECRET
        assert config["ssl_cafile"] == "/etc/ca.pem"
    finally:
        client.close()


@pytest.mark.parametrize("main, argv", [
    (consumer_main, ["--help"]),
    (producer_main, ["--help"]),
    (batch_main, ["run", "--help"]),
])
def test_cli_help_never_shows_secrets_from_environment(main, argv, monkeypatch):
    """Injects: SASL and SSL passwords in the environment, then ``--help``.
    Checks: the help text names the variables but shows neither secret."""
    for name, value in SECRET_ENV.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit):
        main(argv)
    text = out.getvalue()
    assert "KAFKA_SASL_PASSWORD" in text and "KAFKA_SSL_PASSWORD" in text
    assert SASL_SECRET not in text and SSL_SECRET not in text
