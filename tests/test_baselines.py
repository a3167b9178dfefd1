"""SB3 baselines (``melody-rl baseline``), the in-key action mask and the algorithm benchmark.

Every run here is a smoke run (a few hundred env steps, a 16-unit Note RNN): they check the
plumbing (files, summaries, masks, tables, plots), not what the algorithms learn.
"""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

import melody_env  # noqa: F401  (registers the env id)
from agents.baselines.algorithms import ALGORITHMS
from agents.baselines.benchmark import (
    DEFAULT_ALGOS,
    SECTION,
    BenchmarkConfig,
    results_markdown,
    run_benchmark,
    update_results_section,
)
from agents.baselines.config import BaselineConfig
from agents.baselines.masking import MaskedPolicy, VecInKeyActionMask
from agents.baselines.train import train_baseline
from agents.cli import main
from agents.commands.baseline import hyperparameter_overrides
from agents.overrides import apply_overrides
from agents.sb3_vec_env import MelodySB3VecEnv
from melody_env import EnvConfig
from melody_env.evaluation.policies import load_policy
from melody_env.music.encoding import MIN_PITCH
from melody_env.music.keys import Key
from melody_env.wrappers import (
    InKeyActionMask,
    in_key_action_mask,
    key_action_mask,
)

ENV_ID = "melody_env/MelodyComposition-v0"


def _expected_mask(key: str) -> np.ndarray:
    pitches = MIN_PITCH + np.arange(36)
    return np.concatenate([[True, True], Key.from_name(key).contains(pitches)])


# --- the in-key action mask ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["C major", "A minor", "F# major", "Bb minor", "E major"])
def test_key_action_mask_holds_rests_and_scale_notes(key):
    mask = key_action_mask(key)
    np.testing.assert_array_equal(mask, _expected_mask(key))
    assert mask.sum() == 2 + 21  # hold, rest, 7 pitch classes x 3 octaves


def test_wrapper_mask_follows_the_episode_key(tiny_rnn):
    env = InKeyActionMask(gym.make(ENV_ID, key="C major", reward_rnn=tiny_rnn))
    with pytest.raises(RuntimeError, match="reset"):
        env.action_masks()
    env.reset(seed=0)
    np.testing.assert_array_equal(env.action_masks(), _expected_mask("C major"))
    env.reset(seed=1, options={"key": "D minor"})
    np.testing.assert_array_equal(env.action_masks(), _expected_mask("D minor"))
    env.step(0)
    np.testing.assert_array_equal(env.action_masks(), _expected_mask("D minor"))


def test_batched_mask_and_bad_observation():
    obs = np.zeros((2, 1620), np.float32)
    obs[0, -14 + 7], obs[0, -2] = 1, 1  # G major
    obs[1, -14 + 9], obs[1, -1] = 1, 1  # A minor
    masks = in_key_action_mask(obs)
    np.testing.assert_array_equal(masks[0], _expected_mask("G major"))
    np.testing.assert_array_equal(masks[1], _expected_mask("A minor"))
    with pytest.raises(ValueError, match="one-hot key"):
        in_key_action_mask(np.zeros(1620))


def test_vec_mask_answers_sb3_contrib(tiny_rnn):
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported

    envs = VecInKeyActionMask(MelodySB3VecEnv(num_envs=3, key="E minor", reward_rnn=tiny_rnn))
    assert is_masking_supported(envs)
    envs.reset()
    masks = get_action_masks(envs)
    assert masks.shape == (3, 38)
    np.testing.assert_array_equal(masks, np.tile(_expected_mask("E minor"), (3, 1)))
    assert len(envs.env_method("action_masks", indices=[1])) == 1


# --- config and CLI parsing ------------------------------------------------------------------


def test_config_merges_overrides_and_validates():
    config = BaselineConfig(
        algo="sb3-dqn", hyperparams={"gamma": 0.9, "policy_kwargs": {"net_arch": [32]}}
    )
    kwargs = config.algorithm_kwargs()
    assert kwargs["gamma"] == 0.9 and kwargs["policy_kwargs"]["net_arch"] == [32]
    assert ALGORITHMS["sb3-dqn"].hyperparams["gamma"] == 0.5  # defaults untouched
    assert BaselineConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown algorithm"):
        BaselineConfig(algo="sb3-sac")
    with pytest.raises(ValueError, match="total_steps"):
        BaselineConfig(total_steps=0)
    items = hyperparameter_overrides(['policy_kwargs={"net_arch": [8]}', "n_steps=16"])
    assert apply_overrides(config, items).hyperparams == {
        "gamma": 0.9,
        "policy_kwargs": {"net_arch": [8]},
        "n_steps": 16,
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        apply_overrides(config, hyperparameter_overrides(["gamma"]))
    with pytest.raises(ValueError, match=r"unknown BaselineConfig fields \['gama'\]"):
        BaselineConfig.from_dict({"gama": 0.9})


def test_the_env_is_an_env_config_and_former_flat_fields_load_into_it():
    """``BaselineConfig.env`` replaced the flat ``key``, ``reward_scaler`` and ``reward_rnn``;
    summaries written before load with them in ``env`` (the env's default reward mode)."""
    former = {"algo": "sb3-ppo", "key": "e minor", "reward_scaler": 0.5, "reward_rnn": "a.pt"}
    config = BaselineConfig.from_dict(former)
    assert config.env == EnvConfig(key="E minor", reward_scaler=0.5, reward_rnn="a.pt")
    assert config.env.reward_mode == "music_theory_all"
    stored = config.to_dict()
    assert "key" not in stored and stored["env"]["reward_scaler"] == 0.5
    assert BaselineConfig.from_dict(json.loads(json.dumps(stored))) == config
    with pytest.raises(ValueError, match=r"\['key'\] given both at the top level and in env"):
        BaselineConfig.from_dict({"key": "C major", "env": {"key": "D minor"}})
    with pytest.raises(ValueError, match=r"env\.reward_scaler must be > 0, got 0\.0"):
        BaselineConfig(env=EnvConfig(reward_scaler=0.0))
    with pytest.raises(ValueError, match="env must be an EnvConfig"):
        BaselineConfig(env={"key": "G major"})
    items = hyperparameter_overrides(["env.key=g major", "env.reward_scaler=1", "gamma=0.7"])
    assert items == ["env.key=g major", "env.reward_scaler=1", "hyperparams.gamma=0.7"]
    config = apply_overrides(BaselineConfig(), items)
    assert (config.env.key, config.env.reward_scaler) == ("G major", 1.0)
    assert config.hyperparams == {"gamma": 0.7}
    with pytest.raises(ValueError, match=r"unknown config field 'env\.colour'"):
        apply_overrides(BaselineConfig(), hyperparameter_overrides(["env.colour=red"]))


def test_defaults_survive_building_a_model(tiny_rnn):
    """SB3 edits ``policy_kwargs`` in place (A2C adds RMSprop): the shared defaults must not
    change. (The benchmark smoke test builds every algorithm with its defaults.)"""
    from agents.baselines.train import build_model, make_training_env

    config = BaselineConfig(algo="sb3-a2c", num_envs=2)
    envs = make_training_env(config, tiny_rnn)
    model = build_model(config, envs, None)
    assert model.gamma == 0.9 and "optimizer_class" in model.policy_kwargs
    envs.close()
    assert ALGORITHMS["sb3-a2c"].hyperparams["policy_kwargs"] == {"net_arch": [256, 256]}
    assert ALGORITHMS["sb3-dqn"].hyperparams["policy_kwargs"] == {"net_arch": [256, 256]}


# --- training runs ---------------------------------------------------------------------------

_SMALL = {"policy_kwargs": {"net_arch": [32]}, "batch_size": 64}


def test_ppo_run_writes_model_logs_and_summary(tmp_path, tiny_rnn_path):
    from melody_env.evaluation import load_policy

    config = BaselineConfig(
        algo="sb3-ppo",
        total_steps=256,
        num_envs=8,
        env=EnvConfig(reward_rnn=tiny_rnn_path),
        hyperparams=_SMALL,
        eval_compositions=20,
        num_samples=2,
    )
    summary = train_baseline(config, tmp_path / "ppo", log=lambda message: None)
    run = tmp_path / "ppo"
    for name in ("model.zip", "summary.json", "summary.md", "report.json", "curve.csv"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "sample_000.mid",
        "sample_001.mid",
    ]
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    saved = json.loads((run / "summary.json").read_text())
    assert saved["global_step"] == summary["global_step"] == 256
    for column in ("sampled", "greedy", "note_rnn"):
        assert saved[column]["compositions"] == 20
        assert 0.0 <= saved[column]["not_in_key"] <= 1.0
    text = (run / "summary.md").read_text()
    assert "paper Q" in text and "sb3-ppo sampled" in text and "Note RNN (untuned)" in text
    header, *rows = (run / "curve.csv").read_text().splitlines()
    assert header.startswith("global_step,charts/episodic_return") and len(rows) == 1
    assert rows[0].startswith("256,")
    policy = load_policy(f"sb3-ppo:{run / 'model.zip'}")
    assert policy.predict(np.zeros((1, 1620), np.float32))[0].shape == (1,)
    with pytest.raises(FileExistsError):
        train_baseline(config, run, log=lambda message: None)


def test_maskable_ppo_stays_in_key(tmp_path, tiny_rnn_path):
    config = BaselineConfig(
        algo="sb3-maskableppo",
        total_steps=256,
        num_envs=8,
        env=EnvConfig(key="D major", reward_rnn=tiny_rnn_path),
        hyperparams=_SMALL,
        eval_compositions=40,
        note_rnn_column=False,
        num_samples=0,
    )
    summary = train_baseline(config, tmp_path / "mppo", log=lambda message: None)
    assert summary["sampled"]["not_in_key"] == 0.0  # masked in training and evaluation
    assert summary["greedy"]["not_in_key"] == 0.0
    # The evaluation suite's loader masks it too, whether named or detected from the zip.
    for spec in ("sb3-maskableppo:", ""):
        policy = load_policy(f"{spec}{tmp_path / 'mppo' / 'model.zip'}")
        assert isinstance(policy, MaskedPolicy)
    obs = np.zeros((1, 1620), np.float32)
    obs[0, -14 + 2], obs[0, -2] = 1, 1  # D major
    log_pi = policy.action_log_probs(obs)
    assert np.exp(log_pi[0, ~_expected_mask("D major")]).max() < 1e-12


def test_baseline_cli(tmp_path, tiny_rnn_path, capsys):
    out = tmp_path / "dqn"
    argv = ["baseline", "--algo", "sb3-dqn", "--steps", "256", "--num-envs", "8"]
    argv += ["--out", str(out), "--reward-rnn", tiny_rnn_path, "--eval-n", "10", "--seed", "3"]
    argv += ["--set", "learning_starts=64", "--set", 'policy_kwargs={"net_arch": [16]}']
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["config"]["seed"] == 3 and summary["config"]["hyperparams"]["learning_starts"] == 64
    )
    assert "r_MT/step" in capsys.readouterr().out
    assert main(argv) == 2  # the folder already holds a model
    assert "already holds a model" in capsys.readouterr().err


# --- the benchmark ---------------------------------------------------------------------------


def test_benchmark_smoke_every_algorithm(tmp_path, tiny_rnn_path):
    """The CI smoke run: every algorithm, 256 env steps, one seed, table and plot."""
    pytest.importorskip("matplotlib")
    config = BenchmarkConfig(
        algos=DEFAULT_ALGOS,
        seeds=(0,),
        total_steps=256,
        jobs=1,
        num_envs=8,
        eval_compositions=16,
        reward_rnn=tiny_rnn_path,
        command="melody-rl benchmark --steps 256",
    )
    results = run_benchmark(config, tmp_path, log=lambda message: None)
    for algo in DEFAULT_ALGOS:
        (record,) = results["runs"][algo]
        assert "error" not in record, record.get("error")
        assert record["global_step"] == 256
        assert record["statistics"]["compositions"] == 16
        assert (tmp_path / f"{algo}_seed0" / "bench.json").is_file()
    table = (tmp_path / "results.md").read_text()
    assert table.startswith(SECTION)
    header = next(line for line in table.splitlines() if line.startswith("| Statistic"))
    for label in ("Q", "Ψ", "RL only", "DQN", "RecurrentPPO", "Note RNN (untuned)", "Random"):
        assert f"| {label} |" in header
    assert "Env steps per second" in table and "melody-rl benchmark --steps 256" in table
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    again = run_benchmark(config, tmp_path, log=lambda message: None)  # reuses finished runs
    assert again["runs"]["q"][0]["wall_seconds"] == results["runs"]["q"][0]["wall_seconds"]


def test_results_section_is_replaced_in_place(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Results\n\n## Throughput\n\nfast\n\n## Other\n\nkeep me\n")
    update_results_section(path, f"{SECTION}\n\nfirst\n")
    assert path.read_text().endswith(f"keep me\n\n{SECTION}\n\nfirst\n")
    path.write_text(path.read_text() + "\n## Later section\n\nalso kept\n")
    update_results_section(path, f"{SECTION}\n\nsecond\n")
    text = path.read_text()
    assert "first" not in text and "second" in text
    assert text.count(SECTION) == 1
    assert "## Throughput\n\nfast" in text and "keep me" in text and "also kept" in text


def test_results_table_from_records():
    record = {
        "spec": {"algo": "q", "seed": 0},
        "global_step": 100,
        "train_seconds": 2.0,
        "steps_per_second": 50.0,
        "statistics": {"not_in_key": 0.1, "music_theory": 1.0},
    }
    results = {
        "config": BenchmarkConfig(algos=("q",), seeds=(0, 1)).__dict__,
        "machine": "test machine",
        "wall_seconds": 60.0,
        "runs": {"q": [record, {**record, "statistics": {"not_in_key": 0.3}}]},
        "references": {"note_rnn": [], "random": []},
    }
    text = results_markdown(results)
    assert "| Notes not in key | 20.0 ± 14.1% | n/a | n/a |" in text
    assert "test machine" in text


def test_benchmark_cli_rejects_unknown_algorithm(tmp_path, capsys):
    assert main(["benchmark", "--algos", "q,sb3-sac", "--out", str(tmp_path), "--steps", "10"]) == 2
    assert "unknown algorithms ['sb3-sac']" in capsys.readouterr().err


def test_benchmark_runs_the_rl_tuner_with_the_paper_preset(tmp_path, tiny_rnn_path):
    """``--preset paper`` (what ``agents/rl_tuner/benchmark.py`` offered): the run trains with
    the paper's hyperparameters at the benchmark's budget, one composition at a time."""
    from agents.baselines.runs import RunSpec, run

    spec = RunSpec("q", 0, 96, num_envs=1, eval_compositions=8, reward_rnn=tiny_rnn_path)
    record = run(dataclasses.replace(spec, preset="paper"), tmp_path)
    assert record["global_step"] == 96 and record["statistics"]["compositions"] == 8
    stored = json.loads((tmp_path / "q_seed0" / "summary.json").read_text())["config"]
    assert stored["preset"] == "paper" and stored["gamma"] == 0.5 and stored["num_envs"] == 1
    assert stored["exploration_steps"] == 48 and stored["learning_starts"] == 24
    with pytest.raises(ValueError, match="unknown preset 'slow'"):
        BenchmarkConfig(preset="slow")
