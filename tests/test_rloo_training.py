"""RLOO runs: seeding, exact resume, checkpoints, learnability, and the command line."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agents.cli import main
from agents.commands.train import add_parser
from agents.policies import load_policy
from agents.rloo import checkpoint as ckpt
from agents.rloo.config import RLOOConfig, default_env
from agents.rloo.policy import RLOOPolicy
from agents.rloo.run import train
from melody_env.evaluation.evaluate import evaluate
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig


@pytest.fixture(scope="module")
def rnn_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("rnn") / "note_rnn.safetensors"
    NoteRNN(NoteRNNConfig(hidden_size=16), seed=0).save(path)
    return str(path)


def tiny(rnn_path, **overrides) -> RLOOConfig:
    """4 primers x 2 samples of 8 steps = 64 transitions per iteration; 4 iterations."""
    base = dict(
        env=default_env().replace(reward_rnn=rnn_path, composition_length=8),
        num_primers=4,
        samples_per_primer=2,
        total_steps=256,
        position_logits=True,
        summary_compositions=16,
        eval_num_envs=8,
        num_samples=2,
        progress_bar=False,
        torch_threads=1,
    )
    return RLOOConfig(**(base | overrides))


def final_tensors(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(ckpt.find_checkpoint(run_dir) / ckpt.WEIGHTS))


def quiet(*args):
    pass


def test_same_seed_same_run_other_seed_other_run(rnn_path, tmp_path):
    first = train(tiny(rnn_path), tmp_path / "a", log=quiet)
    second = train(tiny(rnn_path), tmp_path / "b", log=quiet)
    other = train(tiny(rnn_path, seed=1), tmp_path / "c", log=quiet)
    a, b, c = (final_tensors(tmp_path / name) for name in "abc")
    assert a.keys() == b.keys() and all(torch.equal(a[name], b[name]) for name in a)
    assert not torch.equal(a["policy.head.bias"], c["policy.head.bias"])
    assert first["sampled"] == second["sampled"] and first["sampled"] != other["sampled"]
    assert "position_logits" in a and "prior.head.bias" in a and "optimizer.0.exp_avg" in a


def test_resume_continues_bit_for_bit(rnn_path, tmp_path):
    whole = train(tiny(rnn_path, checkpoint_every=128), tmp_path / "whole", log=quiet)
    train(tiny(rnn_path, total_steps=128), tmp_path / "split", log=quiet)
    assert json.loads((tmp_path / "split" / "summary.json").read_text())["global_step"] == 128
    resumed = train(tiny(rnn_path), tmp_path / "split", resume=True, log=quiet)
    a, b = final_tensors(tmp_path / "whole"), final_tensors(tmp_path / "split")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert whole["sampled"] == resumed["sampled"] and resumed["gradient_steps"] == 4
    state = json.loads((ckpt.find_checkpoint(tmp_path / "split") / ckpt.STATE).read_text())
    assert state["format"] == ckpt.FORMAT and state["progress"]["iteration"] == 4
    assert RLOOConfig.from_dict(state["config"]) == tiny(rnn_path)


def test_a_checkpoint_with_the_former_flat_env_fields_loads_and_resumes(rnn_path, tmp_path):
    """Checkpoints written before ``RLOOConfig.env`` held the env's fields at the top level
    (and no reward mode: it was always ``music_theory_only``); they load and resume."""
    train(tiny(rnn_path, total_steps=64, summary_compositions=0), tmp_path / "run", log=quiet)
    path = ckpt.find_checkpoint(tmp_path / "run") / ckpt.STATE
    state = json.loads(path.read_text())
    env = state["config"].pop("env")
    names = ("reward_scaler", "key", "composition_length", "steps_per_bar", "primer_context")
    state["config"].update({name: env[name] for name in (*names, "reward_rnn")})
    path.write_text(json.dumps(state))
    expected = tiny(rnn_path, total_steps=64, summary_compositions=0)
    assert ckpt.load_checkpoint(tmp_path / "run").config == expected
    resumed = train(tiny(rnn_path, total_steps=128), tmp_path / "run", resume=True, log=quiet)
    assert resumed["global_step"] == 128 and resumed["config"]["env"] == expected.env.to_dict()


@pytest.mark.parametrize(
    ("damage", "message"),
    [("nan", "NaN or infinite"), ("int", "only floating dtypes"), ("step", "disagrees")],
)
def test_a_damaged_checkpoint_is_refused(rnn_path, tmp_path, damage, message):
    """NaN or integer weights and a step other than its folder's are refused at load, as for
    the RL Tuner's checkpoints."""
    from safetensors.torch import save_file

    train(tiny(rnn_path, total_steps=64, summary_compositions=0), tmp_path / "run", log=quiet)
    folder = ckpt.find_checkpoint(tmp_path / "run")
    if damage == "step":
        state = json.loads((folder / ckpt.STATE).read_text())
        state["progress"]["global_step"] = 65
        (folder / ckpt.STATE).write_text(json.dumps(state))
    else:
        tensors = load_file(str(folder / ckpt.WEIGHTS))
        weight = tensors["policy.head.weight"]
        tensors["policy.head.weight"] = (
            torch.full_like(weight, float("nan")) if damage == "nan" else weight.to(torch.int32)
        )
        save_file(tensors, str(folder / ckpt.WEIGHTS))
    with pytest.raises(ValueError, match=message):
        ckpt.load_checkpoint(tmp_path / "run")


def test_a_run_refuses_to_overwrite_and_resume_needs_a_checkpoint(rnn_path, tmp_path):
    train(tiny(rnn_path, total_steps=64, summary_compositions=0), tmp_path / "run", log=quiet)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(tiny(rnn_path), tmp_path / "run", log=quiet)
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(tiny(rnn_path), tmp_path / "nothing", resume=True, log=quiet)


def test_checkpoint_loads_as_a_policy_and_is_told_from_a_q_run(rnn_path, tmp_path):
    train(tiny(rnn_path, total_steps=64), tmp_path / "run", log=quiet)
    assert ckpt.is_rloo_checkpoint(tmp_path / "run")
    assert not ckpt.is_rloo_checkpoint(tmp_path / "nowhere")
    policy = load_policy(f"agent:{tmp_path / 'run'}")  # the evaluation's loader hook
    assert isinstance(policy, RLOOPolicy) and policy.config == tiny(rnn_path, total_steps=64)
    stored = final_tensors(tmp_path / "run")
    assert torch.equal(policy.position_logits.detach(), stored["position_logits"])
    assert torch.equal(policy.network.head.weight.detach(), stored["policy.head.weight"])
    result = evaluate(
        policy, n=16, reward_rnn=policy.prior, n_bootstrap=0, env_kwargs={"composition_length": 8}
    )
    assert np.isfinite(result.summary["kl"].value) and result.summary["kl"].value > 0
    (tmp_path / "bad" / "checkpoints" / "step_000000064").mkdir(parents=True)
    (tmp_path / "bad" / "checkpoints" / "step_000000064" / ckpt.STATE).write_text('{"format": "x"}')
    (tmp_path / "bad" / "checkpoints" / ckpt.LATEST).write_text(
        '{"checkpoint": "step_000000064", "step": 64}'
    )
    with pytest.raises(ValueError, match="not an RLOO checkpoint"):
        ckpt.load_checkpoint(tmp_path / "bad")


def test_a_short_run_learns_the_rules_with_the_shipped_note_rnn(tmp_path):
    """About 10 s: 16-step compositions, 20 iterations of 32 x 4 (r_MT about -8 -> -1)."""
    config = RLOOConfig(
        env=default_env().replace(composition_length=16),
        num_primers=32,
        samples_per_primer=4,
        total_steps=20 * 128 * 16,
        kl_coef=0.5,
        summary_compositions=256,
        eval_num_envs=128,
        num_samples=0,
        progress_bar=False,
        torch_threads=1,
    )
    frozen = {"total_steps": 1, "learning_rate": 1e-12, "position_learning_rate": 1e-12}
    untuned = RLOOConfig.from_dict({**config.to_dict(), **frozen})
    untuned = train(untuned, tmp_path / "untuned", log=quiet)
    untuned = untuned["sampled"]
    tuned = train(config, tmp_path / "tuned", log=quiet)["sampled"]
    assert tuned["music_theory"] > untuned["music_theory"] + 4.0
    assert tuned["excessively_repeated"] < untuned["excessively_repeated"] / 4
    assert 0 < tuned["kl"] < 1.0 and untuned["kl"] < 1e-3


TINY_CLI = [
    "--steps", "128", "--no-progress", "--set", "env.composition_length=8",
    "--set", "num_primers=4", "--set", "samples_per_primer=2", "--set", "summary_compositions=16",
    "--set", "eval_num_envs=8", "--set", "num_samples=2", "--set", "torch_threads=1",
]  # fmt: skip


def test_cli_train_resume_generate(rnn_path, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--algo", "rloo", "--out", str(out), "--reward-rnn", rnn_path]
    assert main([*args, *TINY_CLI]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert "KL " in line and "distinct openings" in line and "interval overlap" in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["algo"] == "rloo" and summary["global_step"] == 128
    assert len(list((out / "samples").glob("*.mid"))) == 2
    text = (out / "summary.md").read_text()
    assert "rloo sampled" in text and "Distinct openings" in text and "KL(policy" in text
    # resume without --algo: the run folder says it is RLOO
    assert main(["train", "--out", str(out), "--resume", "--steps", "192", "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["global_step"] == 192
    assert (
        main(["generate", "--checkpoint", str(out), "--n", "3", "--out", str(tmp_path / "g")]) == 0
    )
    assert len(list((tmp_path / "g").glob("*.mid"))) == 3
    capsys.readouterr()
    assert main([*args, "--num-envs", "4"]) == 2
    assert "--num-envs is not an RLOO setting" in capsys.readouterr().err
    assert main([*args, "--set", "kl=1"]) == 2
    assert "unknown config field 'kl' in --set 'kl=1'" in capsys.readouterr().err
    assert main([*args[:4], str(tmp_path / "x"), "--set", "samples_per_primer=1"]) == 2
    assert "samples_per_primer must be an integer >= 2" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--set", "kl_coef=2"]) == 2
    assert "cannot change a resumed run" in capsys.readouterr().err
    assert main([*args[:4], str(tmp_path / "y"), "--key", "H major"]) == 2
    assert "unknown key 'H major'" in capsys.readouterr().err


def test_cli_trains_in_key_any_and_generates(rnn_path, tmp_path, capsys):
    """``--key any``: each composition in the key its env drew (the summary in C major)."""
    out = tmp_path / "run"
    args = ["train", "--algo", "rloo", "--out", str(out), "--reward-rnn", rnn_path, "--key", "any"]
    assert main([*args, *TINY_CLI]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["env"]["key"] == "any" and summary["global_step"] == 128
    assert final_tensors(out)["position_logits"].shape == (2, 8, 38)  # per mode
    assert (
        main(["generate", "--checkpoint", str(out), "--n", "3", "--out", str(tmp_path / "g")]) == 0
    )
    assert len(list((tmp_path / "g").glob("*.mid"))) == 3
    # a key-any policy composes in a requested key directly (a one-key one is transposed)
    capsys.readouterr()
    generate = ["generate", "--checkpoint", str(out), "--n", "4", "--key", "E minor", "--greedy"]
    assert main([*generate, "--out", str(tmp_path / "e")]) == 0
    from agents.rloo import RLOO, rloo

    direct = rloo.generate(RLOO.load(out).policy, 4, 0, greedy=True, key="E minor")
    printed = capsys.readouterr().out.strip().splitlines()[-4:]
    assert [line.split(": ")[1] for line in printed] == [
        " ".join(map(str, row)) for row in direct.tolist()
    ]
    with pytest.raises(ValueError, match="trained in C major: it composes in that key only"):
        rloo.generate(_one_key_policy(), 1, key="D major")


def _one_key_policy():
    from agents.rloo.policy import RLOOPolicy

    config = RLOOConfig(env=default_env().replace(composition_length=8))
    return RLOOPolicy.from_config(config, NoteRNN(NoteRNNConfig(hidden_size=8), seed=0))


def test_cli_flags_set_the_config():
    from agents.rloo.command import build_config

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--algo", "rloo", "--out", "x", "--key", "g minor",
                              "--seed", "3", "--steps", "999", "--set", "kl_coef=2.5"])  # fmt: skip
    config = build_config(args)
    assert (config.env.key, config.seed, config.total_steps) == ("G minor", 3, 999)
    assert config.kl_coef == 2.5 and config.env.reward_mode == "music_theory_only"


def test_rloo_is_the_default_algorithm_but_presets_are_q():
    from agents.rloo.command import is_rloo_run

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert is_rloo_run(parser.parse_args(["train", "--out", "x"]))
    assert not is_rloo_run(parser.parse_args(["train", "--out", "x", "--preset", "fast"]))
    assert not is_rloo_run(parser.parse_args(["train", "--out", "x", "--algo", "q"]))
    assert not is_rloo_run(parser.parse_args(["train", "--out", "/no/run", "--resume"]))


def test_a_signal_stops_after_the_iteration_with_a_checkpoint_and_resume_is_exact(
    rnn_path, tmp_path, monkeypatch, capsys
):
    import os
    import signal

    from agents.rloo import rloo

    real = rloo.iteration_step

    def interrupted(policy, optimizer, envs, config, iteration, *rest):
        if iteration == 0:
            os.kill(os.getpid(), signal.SIGINT)  # a real signal through the real handler
        return real(policy, optimizer, envs, config, iteration, *rest)

    monkeypatch.setattr(rloo, "iteration_step", interrupted)
    out = tmp_path / "run"
    argv = ["train", "--algo", "rloo", "--out", str(out), "--reward-rnn", rnn_path, *TINY_CLI]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("melody-rl train: stopped by SIGINT at step 64 of 128;")
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == 64
    assert err[-1].endswith(f"resume with: melody-rl train --resume --out {out}")
    monkeypatch.setattr(rloo, "iteration_step", real)
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert main(["train", "--algo", "rloo", "--out", str(tmp_path / "straight"),
                 "--reward-rnn", rnn_path, *TINY_CLI]) == 0  # fmt: skip
    a, b = final_tensors(out), final_tensors(tmp_path / "straight")
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_the_run_is_the_library_class_on_the_env_id(rnn_path, tmp_path):
    """``train`` (``melody-rl train --algo rloo``) is ``RLOO(ENV_ID, ...).learn(total_steps)``
    plus checkpoints and a summary: the same final weights bit for bit."""
    from agents.rloo import RLOO
    from melody_env import ENV_ID

    config = tiny(rnn_path, summary_compositions=0)
    train(config, tmp_path / "run", log=quiet)
    fields = {name: value for name, value in config.to_dict().items() if name != "seed"}
    del fields["env"]
    env = {"composition_length": 8, "reward_rnn": rnn_path}  # the env's fields by name
    model = RLOO(ENV_ID, seed=config.seed, **fields, **env).learn(config.total_steps)
    assert model.config == config == RLOO.from_config(config).config
    stored = final_tensors(tmp_path / "run")
    network = model.policy.network.state_dict()
    assert all(torch.equal(stored[f"policy.{name}"], network[name]) for name in network)
    assert torch.equal(stored["position_logits"], model.policy.position_logits.detach())
    assert (
        model.num_timesteps
        == json.loads((tmp_path / "run" / "summary.json").read_text())["global_step"]
    )
