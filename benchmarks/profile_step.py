"""Where the time of one env step goes: the native vector env at ``--num-envs`` (default 256),
or the single env through ``gymnasium.make`` (``--single``).

Runs the env with a random policy and times, inside each step: the rule engine
(:meth:`melody_env.rewards.rule_engine.RuleEngine.advance`: rule states, facts and the nine
rules, in one compiled loop, so the rules are not timed one by one), the reward-RNN step, the
reward function (terms, weights, sums), the rest of ``advance`` (the context, the tokens,
log p), the observation write and the rest of ``step`` (action checks, the info, the
observation copy and, for the single env, Gymnasium's wrappers). Autoreset steps (the single
env's resets) are timed apart. Same setup as ``env_throughput.py``: ``NoteRNN(seed=0)``,
``torch.set_num_threads(1)``. Prints a markdown table (median over ``--repeats`` runs of the
per-step means).

    python benchmarks/profile_step.py
    python benchmarks/profile_step.py --single --episodes 100
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import melody_env
from melody_env import MelodyCompositionVectorEnv
from melody_env.models import NoteRNN, lstm_step

EPISODE = 32


class Timers:
    """Accumulates seconds per component; ``wrap`` times a callable under a name."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, function: Callable) -> Callable:
        seconds = self.seconds

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - start

        return timed


def profile(num_envs: int, episodes: int, single: bool) -> tuple[dict[str, float], float]:
    """Mean microseconds per (non-reset) step of each component, and of the whole step."""
    timers = Timers()
    if single:  # the single env through gym.make: the rule engine on a batch of one
        envs = gym.make(melody_env.ENV_ID, reward_rnn=NoteRNN(seed=0))
        state = envs.unwrapped._state
        layout = envs.unwrapped.layout
        saved_rnn_step = lstm_step.step_one  # SingleCompositionState calls it by module
        lstm_step.step_one = timers.wrap("reward RNN step", saved_rnn_step)
    else:
        envs = MelodyCompositionVectorEnv(num_envs, reward_rnn=NoteRNN(seed=0))
        state = envs._state
        layout = envs.layout
        state.reward_rnn.step_arrays = timers.wrap("reward RNN step", state.reward_rnn.step_arrays)
    state._rules.advance = timers.wrap("rule engine", state._rules.advance)
    try:
        state.reward_function = timers.wrap("reward function", state.reward_function)
        state.advance = timers.wrap("advance", state.advance)
        # The layout is a frozen dataclass: set the timed method around its __setattr__.
        object.__setattr__(
            layout, "write_step", timers.wrap("observation write", layout.write_step)
        )
        envs.reset(seed=0)
        rng = np.random.default_rng(0)
        if single:
            actions = rng.integers(0, 38, size=(episodes * EPISODE, 1)).tolist()
        else:
            actions = rng.integers(0, 38, size=(episodes * (EPISODE + 1), num_envs))
        envs.step(actions[0][0] if single else actions[0])
        for key in list(timers.seconds):
            timers.seconds[key] = 0.0
        steps, step_seconds = 0, 0.0
        for step_actions in actions[1:]:
            resetting = envs.unwrapped._state.finished if single else envs._autoreset
            start = time.perf_counter()
            if single and resetting:
                envs.reset()
            else:
                envs.step(step_actions[0] if single else step_actions)
            elapsed = time.perf_counter() - start
            if resetting:
                timers.seconds["autoreset step (apart)"] += elapsed
                continue
            steps += 1
            step_seconds += elapsed
    finally:
        if single:
            lstm_step.step_one = saved_rnn_step
        else:
            del state.reward_rnn.step_arrays
    seconds = dict(timers.seconds)
    components = {
        "rule engine: rule states, facts, the nine rules, r_MT": seconds["rule engine"],
        "reward RNN step": seconds["reward RNN step"],
        "reward function: terms, weights, sums": seconds["reward function"],
        "context, tokens, log p (rest of advance)": seconds["advance"]
        - seconds["reward function"]
        - seconds["reward RNN step"]
        - seconds["rule engine"],
        "observation write": seconds["observation write"],
        "step: checks, infos, obs copy, wrappers": step_seconds
        - seconds["advance"]
        - seconds["observation write"],
    }
    per_step = {key: value / steps * 1e6 for key, value in components.items()}
    resets = len(actions[1:]) - steps
    per_step["autoreset step (per reset)"] = seconds["autoreset step (apart)"] / resets * 1e6
    return per_step, step_seconds / steps * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument(
        "--single", action="store_true", help="profile the single env (gym.make) instead"
    )
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    runs = [profile(args.num_envs, args.episodes, args.single) for _ in range(args.repeats)]
    names = list(runs[0][0])
    medians = {name: float(np.median([run[0][name] for run in runs])) for name in names}
    total = float(np.median([run[1] for run in runs]))
    subject = "single env (gym.make)" if args.single else f"native vector env, N = {args.num_envs}"
    print(
        f"{subject}, median of {args.repeats} runs of {args.episodes} episodes; "
        f"1-min load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after"
    )
    print("\n| component | us per step | share of step |")
    print("|---|---:|---:|")
    for name in names:
        if name.startswith("autoreset"):
            continue
        print(f"| {name} | {medians[name]:,.1f} | {medians[name] / total:.0%} |")
    print(f"| **whole step** (timers included) | **{total:,.1f}** | 100% |")
    reset = "reset" if args.single else f"autoreset step (every {EPISODE + 1}rd)"
    print(f"| {reset}, not above | {medians[names[-1]]:,.1f} | |")


if __name__ == "__main__":
    main()
