from __future__ import annotations

import json

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
