"""``agents.policies``: the env package's checkpoint kinds plus the agents' run folders."""

from __future__ import annotations

import pytest

from agents import policies
from melody_env.evaluation import NoteRNNPolicy, RandomPolicy


def test_bare_folders_are_agent_runs_and_other_kinds_pass_through(tiny_rnn_path):
    assert policies.parse_checkpoint("runs/seed0") == ("agent", "runs/seed0")
    assert policies.parse_checkpoint("agent:runs/x.pt") == ("agent", "runs/x.pt")
    assert policies.parse_checkpoint("sb3-ppo:a.zip") == ("sb3-ppo", "a.zip")
    assert isinstance(policies.load_policy("random"), RandomPolicy)
    assert isinstance(policies.load_policy(tiny_rnn_path), NoteRNNPolicy)
    assert policies.policy_name("runs/seed0") == "seed0"


def test_agent_kind_uses_the_agents_loader(monkeypatch, tmp_path):
    calls = []

    def fake_loader(path):
        calls.append(path)
        return RandomPolicy(seed=0)

    monkeypatch.setitem(policies.LOADERS, "agent", fake_loader)
    (tmp_path / "run").mkdir()
    assert isinstance(policies.load_policy(str(tmp_path / "run")), RandomPolicy)
    assert isinstance(policies.load_policy(f"agent:{tmp_path / 'run'}"), RandomPolicy)
    assert calls == [str(tmp_path / "run")] * 2
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        policies.load_policy(f"agent:{tmp_path / 'nowhere'}")


def test_a_folder_without_a_run_is_refused_with_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises((FileNotFoundError, ValueError), match="empty"):
        policies.load_policy(str(tmp_path / "empty"))
