"""A training run killed at any moment resumes from its last checkpoint with nothing corrupted.

Two ways: deterministically, by copying the run folder as a kill would leave it just before every
rename and delete a checkpoint save makes ("crash images"); and for real, by SIGKILLing
``melody-rl train`` subprocesses at seeded random moments (slow).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.rl_tuner import checkpoint as ckpt
from agents.rl_tuner.trainer import Trainer, train
from tests.conftest import tiny_agent_config

ROOT = Path(__file__).resolve().parents[1]
# tiny_agent_config: 384 steps in rounds of 64; checkpoints at 128, 256 and 384 (the last
# deletes 128).


def latest_step_or_none(run: Path) -> int | None:
    """Check what a resume could meet after a kill; return the latest checkpoint's step.

    Every visible ``step_*`` folder must be a complete checkpoint (so none can be passed to
    ``--checkpoint`` half-deleted), and ``latest.json``, if any, must point to one.
    """
    root = run / ckpt.CHECKPOINTS
    for folder in sorted(root.glob("step_*")):
        loaded = ckpt.load_checkpoint(folder)
        with np.load(loaded.replay_path, allow_pickle=False) as replay:
            assert len(replay["actions"]) == loaded.state["replay"]["size"], folder
    if not (root / ckpt.LATEST).exists():
        with pytest.raises(FileNotFoundError, match=r"no checkpoint|does not exist"):
            ckpt.find_checkpoint(run)
        return None
    return ckpt.load_checkpoint(run).state["progress"]["global_step"]


def hidden_leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in (run / ckpt.CHECKPOINTS).glob(".*"))


def record_crash_images(run: Path, images: Path, monkeypatch) -> list[tuple[str, Path]]:
    """Make every ``os.replace``/``shutil.rmtree`` under ``run/checkpoints`` first copy ``run``.

    A copy taken just before a rename is what a kill at that moment leaves; temporary files in it
    are cut in half (a kill during their write). Before a delete, a second copy has the folder
    half-deleted (its weights gone, its ``state.json`` still there).
    """
    taken: list[tuple[str, Path]] = []
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def snapshot(label: str) -> Path:
        image = images / f"{len(taken):02d}"
        shutil.copytree(run, image, ignore=shutil.ignore_patterns("tensorboard"))
        for tmp in image.rglob("*.tmp"):
            if tmp.is_file():
                tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
        taken.append((label, image))
        return image

    def replace(src, dst, *args, **kwargs):
        if ckpt.CHECKPOINTS in Path(dst).parts:
            snapshot(f"before renaming {Path(src).name} to {Path(dst).name}")
        return real_replace(src, dst, *args, **kwargs)

    def rmtree(path, *args, **kwargs):
        if ckpt.CHECKPOINTS in Path(path).parts and Path(path).is_dir():
            snapshot(f"before deleting {Path(path).name}")
            half = snapshot(f"halfway through deleting {Path(path).name}")
            (half / Path(path).relative_to(run) / ckpt.WEIGHTS).unlink(missing_ok=True)
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    return taken


def test_a_kill_at_any_point_of_a_checkpoint_save_leaves_a_resumable_run(
    tiny_rnn_path, tmp_path, monkeypatch
):
    config = tiny_agent_config(tiny_rnn_path)
    train(config, tmp_path / "straight", log=lambda *_: None)
    with monkeypatch.context() as patch:
        images = record_crash_images(tmp_path / "run", tmp_path / "images", patch)
        train(config, tmp_path / "run", log=lambda *_: None)
    # 5 renames per save (3 files, the folder, latest.json) and, at 384, deleting step 128
    assert len(images) >= 15
    labels = " ".join(label for label, _ in images)
    assert "halfway through deleting" in labels  # step 128, when 384 is saved

    # the most delicate moment: step_000000384 complete, latest.json still pointing to 256
    image = next(
        image
        for label, image in images
        if "to latest.json" in label and (image / ckpt.CHECKPOINTS / "step_000000384").is_dir()
    )
    assert latest_step_or_none(image) == 256
    train(config, shutil.copytree(image, tmp_path / "resumed"), resume=True, log=lambda *_: None)
    straight = ckpt.load_checkpoint(tmp_path / "straight").tensors
    resumed = ckpt.load_checkpoint(tmp_path / "resumed").tensors
    assert all(torch.equal(straight[name], resumed[name]) for name in straight)

    steps = set()
    for label, image in images:
        step = latest_step_or_none(image)
        steps.add(step)
        # whatever a kill left, the next save (here: of the resumed or a fresh run) clears it
        trainer = Trainer(config, image, resume=step is not None, log=lambda *_: None)
        trainer.save()
        assert hidden_leftovers(image) == [], label
        assert latest_step_or_none(image) == trainer.progress.global_step
    # a kill before the first latest.json leaves no checkpoint; later ones the previous one
    assert steps == {None, 128, 256, 384}


def test_a_killed_saves_leftovers_are_never_taken_for_checkpoints(tiny_rnn_path, tmp_path):
    config = tiny_agent_config(tiny_rnn_path)
    run = tmp_path / "run"
    train(config, run, log=lambda *_: None)
    root = run / ckpt.CHECKPOINTS
    # what a kill leaves: a staging folder, a folder being deleted, a temporary latest.json
    staging = root / ".step_000000512.tmp99999"
    shutil.copytree(root / "step_000000384", staging)
    shutil.copytree(root / "step_000000256", root / ".step_000000128.del99999")
    (root / ".latest.json.k3x9_a.tmp").write_text('{"checkpoint": "step_0000')
    # and a kill while the summary or a sample was written (atomic_path's temporary files)
    (run / ".summary.json.k3x9_a1b.tmp").write_text('{"sampled": ')
    (run / "samples").mkdir(exist_ok=True)
    (run / "samples" / ".sample_000.mid.q8w7e6r5.tmp").write_bytes(b"MThd")
    (run / "notes.tmp").write_text("the user's own file")
    assert ckpt.find_checkpoint(run) == root / "step_000000384"
    train(config, run, resume=True, log=lambda *_: None)  # already done: nothing saved
    assert len(hidden_leftovers(run)) == 3
    resumed = sorted(p.name for folder in (run, run / "samples") for p in folder.glob("*.tmp"))
    assert resumed == ["notes.tmp"]  # the resume cleared the summary's and the sample's
    longer = dataclasses.replace(config, total_steps=512)
    train(longer, run, resume=True, log=lambda *_: None)  # saves at 512, clearing them
    assert hidden_leftovers(run) == []
    assert sorted(p.name for p in root.iterdir()) == [
        "latest.json",
        "step_000000384",
        "step_000000512",
    ]


# ---------------------------------------------------------------- real SIGKILLs


TRAIN = [sys.executable, "-m", "agents.cli", "train", "--no-progress"]
TINY = [
    "--algo", "q", "--steps", "10000000", "--num-envs", "8", "--checkpoint-every", "64",
    "--eval-every", "0", "--set", "env.composition_length=8", "--set", "learning_starts=64",
    "--set", "batch_size=4", "--set", "train_frequency=16", "--set", "summary_compositions=8",
    "--set", "eval_num_envs=8", "--set", "num_samples=1",
]  # fmt: skip
"""Rounds of 64 transitions with a checkpoint after each. The budget is one no kill sequence
reaches on any machine; the last resume sets the real end with ``--steps``."""


def wait_for(condition, process, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended (rc {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def latest_pointer(run: Path) -> str | None:
    try:
        return (run / ckpt.CHECKPOINTS / ckpt.LATEST).read_text()
    except FileNotFoundError:
        return None


def staging_folder_exists(run: Path) -> bool:
    return any((run / ckpt.CHECKPOINTS).glob(".step_*.tmp*"))


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_finishes_the_run(tiny_rnn_path, tmp_path):
    """About 20-60 s on 2 cores: six killed processes, then one that finishes the run."""
    rng = random.Random(20240611)  # seeded: the same delays on every run of the test
    run = tmp_path / "run"
    log = (tmp_path / "train.log").open("wb")
    # "any": a moment after start (maybe during start-up); "training": after this process's
    # first checkpoint; "writing": as soon as a checkpoint's staging folder appears.
    moments = ["any", "training", "writing", "training", "writing", "writing"]
    steps = []
    for moment in moments:
        resume = latest_pointer(run) is not None
        fresh = ["--reward-rnn", tiny_rnn_path, *TINY]
        args = ["--out", str(run), *(["--resume"] if resume else fresh)]
        process = subprocess.Popen([*TRAIN, *args], cwd=ROOT, stdout=log, stderr=log)
        try:
            if moment == "any":
                time.sleep(rng.uniform(0.5, 8.0))
            else:
                before = latest_pointer(run)
                wait_for(lambda: latest_pointer(run) != before, process, "a checkpoint")  # noqa: B023
                if moment == "training":
                    time.sleep(rng.uniform(0.0, 1.0))
                else:
                    wait_for(lambda: staging_folder_exists(run), process, "a checkpoint write")
                    time.sleep(rng.uniform(0.0, 0.02))
            assert process.poll() is None, "the run ended before it could be killed"
            process.send_signal(signal.SIGKILL)
        finally:
            process.kill()
            process.wait()
        assert process.returncode == -signal.SIGKILL
        mid_write = bool(hidden_leftovers(run)) if (run / ckpt.CHECKPOINTS).is_dir() else False
        step = latest_step_or_none(run)
        print(f"killed at a moment '{moment}': latest step {step}, mid-write {mid_write}")
        if step is not None:  # a resume never goes back
            assert all(step >= earlier for earlier in steps if earlier is not None)
        steps.append(step)

    assert any(step is not None for step in steps)
    end = max(step for step in steps if step is not None) + 4 * 64  # four more rounds
    resume = [*TRAIN, "--out", str(run), "--resume", "--steps", str(end)]
    done = subprocess.run(resume, cwd=ROOT, stdout=log, stderr=log)
    log.close()
    assert done.returncode == 0, (tmp_path / "train.log").read_text()[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["global_step"] == end
    assert latest_step_or_none(run) == end
    assert hidden_leftovers(run) == []
    assert sorted(p.name for p in (run / ckpt.CHECKPOINTS).iterdir()) == [
        "latest.json",
        f"step_{end - 64:09d}",
        f"step_{end:09d}",
    ]
