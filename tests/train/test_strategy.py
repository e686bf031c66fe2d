from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from tfrec_tools.errors import ConfigError
from tfrec_tools.train import strategy
from tfrec_tools.train.strategy import Cluster, cluster_from_env, detect_device


def set_config(monkeypatch, cluster, task=None):
    config = {"cluster": cluster, **({"task": task} if task else {})}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


def test_no_tf_config_is_one_machine(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert cluster_from_env() is None


def test_a_cluster_of_one_is_one_machine(monkeypatch):
    set_config(monkeypatch, {"worker": ["a:1"]}, {"type": "worker", "index": 0})
    assert cluster_from_env() is None


@pytest.mark.parametrize(
    ("cluster", "task", "expected"),
    [
        ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, Cluster(2, "worker", 0, True)),
        (
            {"worker": ["a:1", "b:1"]},
            {"type": "worker", "index": 1},
            Cluster(2, "worker", 1, False),
        ),
        (
            {"chief": ["c:1"], "worker": ["a:1", "b:1"]},
            {"type": "worker", "index": 0},
            Cluster(3, "worker", 0, False),
        ),
        (
            {"chief": ["c:1"], "worker": ["a:1"], "evaluator": ["e:1"]},
            {"type": "chief", "index": 0},
            Cluster(2, "chief", 0, True),
        ),
    ],
)
def test_cluster_and_chief(monkeypatch, cluster, task, expected):
    set_config(monkeypatch, cluster, task)
    assert cluster_from_env() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "TF_CONFIG is not valid"),
        (json.dumps({"cluster": {"worker": ["a:1"], "ps": ["p:1"]}}), "names ['ps'] tasks"),
        (
            json.dumps(
                {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}
            ),
            "does not list",
        ),
        (json.dumps({"cluster": {"worker": ["a:1", "b:1"]}}), "does not list"),
    ],
)
def test_bad_tf_config_is_a_config_error(monkeypatch, text, message):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        cluster_from_env()


def test_one_process_ignores_tf_config_when_asked(monkeypatch):
    def refuse():  # creating the strategy would wait forever for the other worker
        raise AssertionError("TF_CONFIG was read")

    monkeypatch.setattr(strategy, "cluster_from_env", refuse)
    set_config(monkeypatch, {"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1})
    device = detect_device(multi_worker=False)
    assert (device.workers, device.is_chief, device.kind) == (1, True, "CPU")


# TPU detection, with TensorFlow's TPU entry points replaced: nothing here touches a real TPU.
TPU_ENV = ("TPU_NAME", "TPU_CONFIG", "KUBE_GOOGLE_CLOUD_TPU_ENDPOINTS")
NO_TPU_NAME = ValueError("Please provide a TPU Name to connect to.")  # TF 2.21's words


class FakeTPUStrategy:
    num_replicas_in_sync = 8

    def __init__(self, resolver):
        self.resolver = resolver
        self.extended = SimpleNamespace(num_hosts=1)


@pytest.fixture
def fake_tpu(monkeypatch):
    """Record which TPUClusterResolver forms are tried; ``outcome[form]`` says what happens
    to each (``None`` is the no-argument form): an exception raised by the constructor,
    ``"init fails"`` or ``"ok"``. ``attached`` is what the TPU device list reports."""
    tf = strategy.import_tensorflow()
    for name in TPU_ENV:
        monkeypatch.delenv(name, raising=False)
    calls = SimpleNamespace(
        outcome={None: NO_TPU_NAME, "local": "ok"}, attached=True, gpus=0, tried=[], started=[]
    )

    class FakeResolver:
        def __init__(self, tpu=None):
            calls.tried.append(tpu)
            if isinstance(calls.outcome[tpu], Exception):
                raise calls.outcome[tpu]
            self.tpu = tpu

    def initialize(resolver):
        assert isinstance(resolver, FakeResolver), "a real TPU initialisation was attempted"
        if calls.outcome[resolver.tpu] == "init fails":
            raise tf.errors.NotFoundError(None, None, "TPUs not found in the cluster.")
        calls.started.append(resolver.tpu)

    def connect(resolver):
        assert isinstance(resolver, FakeResolver), "a real TPU connection was attempted"

    def devices(kind=None):
        if kind in ("TPU_SYSTEM", "TPU"):
            return ["TPU device"] if calls.attached else []
        assert kind == "GPU", kind
        return ["GPU device"] * calls.gpus

    monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", FakeResolver)
    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", connect)
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", initialize)
    monkeypatch.setattr(tf.config, "list_physical_devices", devices)
    monkeypatch.setattr(tf.distribute, "TPUStrategy", FakeTPUStrategy)
    return calls


def test_the_tpu_the_environment_names_comes_first(fake_tpu):
    fake_tpu.outcome[None] = "ok"
    device = detect_device(multi_worker=False)
    assert (device.kind, device.replicas, device.workers) == ("TPU", 8, 1)
    assert device.strategy.resolver.tpu is None
    assert (fake_tpu.tried, fake_tpu.started) == ([None], [None])


def test_a_tpu_vm_is_found_with_tpu_local(fake_tpu):
    device = detect_device(multi_worker=False)
    assert (device.kind, device.replicas) == ("TPU", 8)
    assert device.strategy.resolver.tpu == "local"
    assert (fake_tpu.tried, fake_tpu.started) == ([None, "local"], ["local"])


def test_tpu_name_local_goes_straight_to_the_tpu_vm_form(fake_tpu, monkeypatch):
    monkeypatch.setenv("TPU_NAME", "local")
    assert detect_device(multi_worker=False).kind == "TPU"
    assert fake_tpu.tried == ["local"]


@pytest.mark.parametrize(("gpus", "kind"), [(0, "CPU"), (1, "GPU")])
def test_no_tpu_attached_skips_the_tpu_vm_form(fake_tpu, caplog, gpus, kind):
    fake_tpu.attached, fake_tpu.gpus = False, gpus
    with caplog.at_level(logging.DEBUG, logger=strategy.__name__):
        device = detect_device(multi_worker=False)
    assert (device.kind, device.replicas) == (kind, 1)
    assert (fake_tpu.tried, fake_tpu.started) == ([None], [])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("gpus", [0, 1])
def test_an_attached_tpu_that_does_not_start_is_an_error(fake_tpu, caplog, gpus):
    fake_tpu.outcome["local"], fake_tpu.gpus = "init fails", gpus
    with pytest.raises(ConfigError, match="this machine has a TPU .* but it did not start"):
        detect_device(multi_worker=False)
    assert (fake_tpu.tried, fake_tpu.started) == ([None, "local"], [])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "TPU not used: TPUClusterResolver(tpu='local') failed: TPUs not found in the cluster."
    ]


def test_an_unreachable_named_tpu_warns_then_tries_the_tpu_vm_form(fake_tpu, caplog):
    fake_tpu.outcome[None] = OSError("<urlopen error [Errno -2] Name or service not known>")
    assert detect_device(multi_worker=False).kind == "TPU"
    assert fake_tpu.tried == [None, "local"]
    assert "TPUClusterResolver() failed: <urlopen error" in caplog.text


def test_a_cpu_machine_never_initialises_a_tpu(monkeypatch, caplog):
    tf = strategy.import_tensorflow()
    for name in TPU_ENV:
        monkeypatch.delenv(name, raising=False)

    def refuse(*args, **kwargs):
        raise AssertionError("TPU initialisation attempted on a machine without a TPU")

    monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", refuse)
    monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", refuse)
    with caplog.at_level(logging.DEBUG, logger=strategy.__name__):
        device = detect_device(multi_worker=False)
    assert device.kind != "TPU"
    assert [r.getMessage() for r in caplog.records] == [
        "TPU not used: TPUClusterResolver() failed: Please provide a TPU Name to connect to.",
        "no TPU attached to this machine",
    ]
