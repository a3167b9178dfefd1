"""Forked workers with the shipped Note RNN, and torch on one thread in the env's step path.

Torch's OpenMP pool is not fork-safe: once a process has run a parallel op, a forked child that
runs one hangs forever. The shipped 100-unit weights are large enough for torch to parallelise
copies and element-wise ops (a 16-unit RNN is not), so these tests use the shipped model, the
platform's default start method, and a subprocess with a timeout that fails instead of hanging.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import melody_env
from melody_env import MelodyCompositionVectorEnv
from melody_env.models import NoteRNN, lstm_step
from melody_env.models import note_rnn as note_rnn_module

TIMEOUT_S = 240  # a hang fails the test; a healthy run takes a few seconds


def run_script(body: str) -> str:
    script = textwrap.dedent(body)
    try:
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung for {TIMEOUT_S} s (forked workers deadlocked):\n{script}")
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


ASYNC_ROLLOUT = """
    import gymnasium as gym
    import melody_env
    {before}
    envs = gym.make_vec(melody_env.ENV_ID, num_envs=2, vectorization_mode="async")
    envs.reset(seed=0)
    for _ in range(40):  # more than one episode: autoreset primes the RNN again
        _, rewards, _, _, _ = envs.step(envs.action_space.sample())
    envs.close()
    print("done", rewards.shape)
"""


def test_async_vector_env_with_the_shipped_note_rnn():
    """Nothing made before: AsyncVectorEnv itself builds one env in the parent first."""
    assert "done (2,)" in run_script(ASYNC_ROLLOUT.format(before=""))


def test_async_vector_env_after_the_parent_used_the_thread_pool():
    """The parent ran big parallel ops (its own training, say) before forking."""
    before = "import torch; x = torch.randn(1500, 1500); (x @ x).sigmoid_().sum()"
    assert "done (2,)" in run_script(ASYNC_ROLLOUT.format(before=before))


def test_fork_pool_loads_and_steps_the_shipped_note_rnn():
    out = run_script(
        """
        import multiprocessing, torch
        import gymnasium as gym, melody_env
        env = gym.make(melody_env.ENV_ID)  # loads the shipped model in the parent
        env.reset(seed=0)
        torch.randn(1500, 1500).sigmoid_()

        def work(seed):
            env = gym.make(melody_env.ENV_ID, composition_length=8)
            env.reset(seed=seed)
            return len([env.step(3) for _ in range(8)])

        with multiprocessing.get_context("fork").Pool(2) as pool:
            print(pool.map(work, [0, 1]))
        """
    )
    assert "[8, 8]" in out


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_every_reward_rnn_op_runs_on_one_thread_and_the_setting_is_restored(
    monkeypatch, two_threads
):
    """The env's torch work (build, load, prime, step) sees one thread; the caller keeps two."""
    seen = []

    def spy(function):
        def wrapped(*args, **kwargs):
            seen.append((function.__name__, torch.get_num_threads()))
            return function(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(lstm_step, "step_torch", spy(lstm_step.step_torch))
    monkeypatch.setattr(lstm_step, "build", spy(lstm_step.build))
    monkeypatch.setattr(NoteRNN, "forward", spy(NoteRNN.forward))
    monkeypatch.setattr(NoteRNN, "_build", spy(NoteRNN._build))
    rnn = NoteRNN.load()
    envs = MelodyCompositionVectorEnv(64, reward_rnn=rnn)
    envs.reset(seed=0, options={"primer": np.arange(2, 22)})  # a long primer: forward
    for _ in range(3):
        envs.step(np.zeros(64, np.int64))
    names = {name for name, _ in seen}
    assert {"step_torch", "build", "forward", "_build"} <= names
    assert {threads for _, threads in seen} == {1}, seen
    assert torch.get_num_threads() == 2


def test_single_threaded_restores_after_an_error(two_threads):
    with pytest.raises(RuntimeError), note_rnn_module.single_threaded():
        assert torch.get_num_threads() == 1
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_shipped_model_id_is_registered():
    assert melody_env.ENV_ID.startswith("melody_env/")
