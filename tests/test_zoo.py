"""RL Baselines3 Zoo: the shipped hyperparameter files, and a short ``rl_zoo3.train`` run.

The zoo's own hyperparameter folder lives inside its installed package, so the env's files ship
in :mod:`melody_env.zoo` and are passed with ``--conf-file``.
"""

from __future__ import annotations

import sys

import pytest

from agents.baselines.algorithms import ALGORITHMS
from melody_env.zoo import ALGORITHMS as ZOO_ALGORITHMS
from melody_env.zoo import conf_file

ENV_ID = "melody_env/MelodyComposition-v0"
BATCHED_ENVS = 64
"""``melody-rl baseline``'s default number of envs, which its per-step counts assume."""


def test_every_zoo_algorithm_has_a_file():
    expected = sorted(spec.zoo_name for spec in ALGORITHMS.values() if spec.zoo_name)
    assert sorted(ZOO_ALGORITHMS) == expected
    for algo in ZOO_ALGORITHMS:
        assert conf_file(algo).is_file()
    with pytest.raises(ValueError, match="no zoo hyperparameters"):
        conf_file("sac")


@pytest.mark.parametrize("name", [name for name, spec in ALGORITHMS.items() if spec.zoo_name])
def test_zoo_file_matches_baseline_defaults(name):
    """The YAML holds ``melody-rl baseline``'s defaults, rescaled to the zoo's env count."""
    yaml = pytest.importorskip("yaml")
    spec = ALGORITHMS[name]
    zoo = yaml.safe_load(conf_file(spec.zoo_name).read_text())[ENV_ID]
    assert zoo["policy"] == spec.policy
    assert eval(zoo["policy_kwargs"], {"dict": dict}) == spec.hyperparams["policy_kwargs"]
    scale = zoo["n_envs"] / BATCHED_ENVS
    for key, value in spec.hyperparams.items():
        if key == "policy_kwargs":
            continue
        if key in ("n_steps", "train_freq"):
            # per vector step: the same transitions per rollout / per training round
            assert zoo[key] * scale == value, key
            continue
        assert zoo[key] == pytest.approx(value), key
    assert set(zoo) - set(spec.hyperparams) == {"n_envs", "n_timesteps", "policy"}


def test_conf_file_cli(capsys, monkeypatch):
    import runpy

    monkeypatch.setattr(sys, "argv", ["melody_env.zoo", "dqn"])
    runpy.run_module("melody_env.zoo", run_name="__main__")
    assert capsys.readouterr().out.strip() == str(conf_file("dqn"))


def test_rl_zoo_trains_ppo(tmp_path, tiny_rnn_path, monkeypatch):
    """``python -m rl_zoo3.train --gym-packages melody_env --env ... --algo ppo --conf-file``."""
    pytest.importorskip("rl_zoo3", reason="RL Baselines3 Zoo is the 'zoo' extra")
    from rl_zoo3.train import train

    argv = ["rl_zoo3.train", "--gym-packages", "melody_env", "--env", ENV_ID, "--algo", "ppo"]
    argv += ["--conf-file", str(conf_file("ppo")), "-n", "256", "--seed", "0"]
    argv += ["--log-folder", str(tmp_path), "--eval-freq", "-1", "--verbose", "0"]
    argv += ["-params", "n_envs:2", "n_steps:64", "batch_size:64", "n_epochs:1"]
    argv += ["--env-kwargs", f"reward_rnn:{tiny_rnn_path!r}"]
    monkeypatch.setattr(sys, "argv", argv)
    train()
    run = tmp_path / "ppo" / "melody_env-MelodyComposition-v0_1"
    assert (run / "melody_env-MelodyComposition-v0.zip").is_file()
    saved = (run / "melody_env-MelodyComposition-v0" / "config.yml").read_text()
    assert "gamma" in saved and "0.9" in saved
