"""Learning curves of an SB3 run under the RL Tuner agent's metric names.

:class:`MelodyMetricsCallback` reads each finished composition's rewards and ``info`` entries
(``music_theory`` and ``log_prob``, which :class:`~agents.sb3_vec_env.MelodySB3VecEnv` passes on)
and logs, once per round of finished compositions, with the env steps as the x axis:

=========================  ====================================================================
``charts/episodic_return``  mean env reward per composition
``charts/music_theory``     mean r_MT per composition
``charts/log_prob``         mean log p(a | s) per step under the Note RNN
``charts/SPS``              env steps per second since the previous point
=========================  ====================================================================

to TensorBoard (``RUN/tensorboard/melody``) and to ``RUN/curve.csv``, the same tags as
``melody-rl train`` logs, so one plot (``melody_env.evaluation.plots.read_training_log``) reads
every run.
"""

from __future__ import annotations

import csv
import os
import time
from pathlib import Path

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

CURVE_COLUMNS = (
    "global_step",
    "charts/episodic_return",
    "charts/music_theory",
    "charts/log_prob",
    "charts/SPS",
)
"""Columns of ``curve.csv``."""


class MelodyMetricsCallback(BaseCallback):
    """Logs :data:`CURVE_COLUMNS` each time compositions finish.

    Args:
        run_dir: the run folder (``curve.csv`` and ``tensorboard/melody`` go there).
        tensorboard: also write TensorBoard scalars.
    """

    def __init__(self, run_dir: str | os.PathLike, tensorboard: bool = True) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.use_tensorboard = tensorboard
        self._writer = None
        self._csv = None
        self._rows = None

    def _on_training_start(self) -> None:
        n = self.training_env.num_envs
        self._reward = np.zeros(n)
        self._music_theory = np.zeros(n)
        self._log_prob = np.zeros(n)
        self._steps = np.zeros(n)
        self._last_time = time.perf_counter()
        self._last_step = self.num_timesteps
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "curve.csv"
        new = not path.exists()
        self._csv = open(path, "a", newline="")  # noqa: SIM115 (closed in _on_training_end)
        self._rows = csv.writer(self._csv)
        if new:
            self._rows.writerow(CURVE_COLUMNS)
        if self.use_tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tensorboard" / "melody"))

    def _on_step(self) -> bool:
        rewards = np.asarray(self.locals["rewards"], np.float64)
        dones = np.asarray(self.locals["dones"], bool)
        infos = self.locals["infos"]
        self._reward += rewards
        self._music_theory += [info.get("music_theory", np.nan) for info in infos]
        self._log_prob += [info.get("log_prob", np.nan) for info in infos]
        self._steps += 1
        if dones.any():
            self._log(dones)
        return True

    def _log(self, dones: np.ndarray) -> None:
        now, step = time.perf_counter(), self.num_timesteps
        sps = (step - self._last_step) / max(now - self._last_time, 1e-9)
        values = (
            float(self._reward[dones].mean()),
            float(self._music_theory[dones].mean()),
            float((self._log_prob[dones] / self._steps[dones]).mean()),
            float(sps),
        )
        self._rows.writerow((step, *values))
        if self._writer is not None:
            for tag, value in zip(CURVE_COLUMNS[1:], values, strict=True):
                if np.isfinite(value):
                    self._writer.add_scalar(tag, value, step)
        for array in (self._reward, self._music_theory, self._log_prob, self._steps):
            array[dones] = 0.0
        self._last_time, self._last_step = now, step

    def _on_training_end(self) -> None:
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ProgressBarCallback(BaseCallback):
    """A tqdm bar of the training env steps with an ETA (:func:`agents.progress.progress_bar`),
    needing neither SB3's ``rich`` extra nor a terminal.

    Args:
        description: the bar's label.
    """

    def __init__(self, description: str = "train") -> None:
        super().__init__()
        self.description = description
        self._bar = None
        self._counted = 0

    def _on_training_start(self) -> None:
        from agents.progress import progress_bar

        total = self.locals["total_timesteps"] - self.model.num_timesteps
        self._counted = self.model.num_timesteps
        self._bar = progress_bar(total, self.description, "step")

    def _on_step(self) -> bool:
        # On-policy rollouts may end past the budget: the bar stops at its total.
        done = min(self.model.num_timesteps - self._counted, self._bar.total - self._bar.n)
        if done > 0:
            self._bar.update(done)
            self._counted += done
        return True

    def _on_training_end(self) -> None:
        if self._bar is not None:
            self._bar.close()
