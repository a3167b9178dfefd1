"""The RL Tuner training loop, top to bottom: setup, (resume), rounds of acting and learning,
evaluation, logging, checkpoints, and the final summary.

Each round, the ``N`` vector envs are reset with seeds of that round and write ``N`` whole
compositions while the agent acts epsilon-greedily (or by Boltzmann sampling) with one batched
forward of its Q-network per step. After every ``train_frequency`` transitions (once
``learning_starts`` have been collected) a batch of whole compositions is replayed for one
gradient step and the target network follows softly. Finished compositions enter the replay at
the end of the round; checkpoints are taken between rounds.

TensorBoard scalars (``RUN/tensorboard``): ``charts/episodic_return``, ``charts/music_theory``
(r_MT per composition), ``charts/log_prob`` (per step), ``rewards/<term>`` (per composition),
``charts/epsilon``, ``charts/SPS``, ``losses/td_loss``, ``losses/q_values``,
``losses/td_target``, ``losses/grad_norm``, and ``eval/<statistic>`` of
:mod:`agents.rl_tuner.summary`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents.rl_tuner import checkpoint as ckpt
from agents.rl_tuner import dqn
from agents.rl_tuner.agent import RLTunerAgent
from agents.rl_tuner.config import TrainConfig
from agents.rl_tuner.replay import CompositionReplay
from agents.rl_tuner.rollout import (
    Compositions,
    compose,
    make_vector_env,
)
from agents.rl_tuner.summary import composition_stats, evaluation_summary, write_summary
from agents.run_control import GracefulStop, Stopped
from melody_env.atomic import remove_temporaries
from melody_env.io.midi_writer import write_midi
from melody_env.models.note_rnn import NoteRNN


@dataclass
class Progress:
    """Counters of a run (saved in every checkpoint)."""

    global_step: int = 0
    """Training transitions collected."""
    gradient_steps: int = 0
    """Gradient steps taken."""
    rounds: int = 0
    """Rounds of ``num_envs`` compositions completed."""
    train_credit: int = 0
    """Transitions collected since the last gradient step (once learning started)."""
    next_eval_step: int = 0
    """``global_step`` at or after which the next evaluation runs."""
    next_checkpoint_step: int = 0
    """``global_step`` at or after which the next checkpoint is written."""
    train_seconds: float = 0.0
    """Wall-clock seconds spent acting and learning (evaluation excluded)."""


class _RunFolder:
    """Default of ``tensorboard_log``: the run folder's ``tensorboard/``."""


class _NullWriter:
    """A TensorBoard writer that writes nothing (no ``tensorboard_log``)."""

    def add_scalar(self, *args, **kwargs) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class _NoCallback:
    def on_training_start(self, locals_, globals_) -> None:
        pass

    def on_rollout_start(self) -> None:
        pass

    def on_step(self) -> bool:
        return True

    def on_rollout_end(self) -> None:
        pass

    def on_training_end(self) -> None:
        pass


def env_reward_rnn(envs: gym.vector.VectorEnv) -> NoteRNN:
    """The reward RNN of a vector env of melody envs: the native one's, or the first env's of a
    ``SyncVectorEnv`` (all envs of one made by ``gymnasium.make_vec`` share it)."""
    vector = envs.unwrapped
    if hasattr(vector, "reward_rnn"):
        return vector.reward_rnn
    return vector.envs[0].unwrapped.reward_rnn


def load_note_rnn(path: str | None) -> NoteRNN:
    """The pretrained Note RNN at ``path`` (the shipped one for ``None``), with a clear error."""
    try:
        return NoteRNN.load(path)
    except FileNotFoundError as error:
        hint = "" if path else " (train it with `melody-rl pretrain --ship`, or pass --reward-rnn)"
        raise FileNotFoundError(f"{error}{hint}") from error


def checkpoint_state(
    config: TrainConfig,
    agent: RLTunerAgent,
    optimizer: torch.optim.Optimizer,
    replay: CompositionReplay,
    rng: np.random.Generator,
    progress: Progress,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON state of a checkpoint."""
    tensors = agent.named_tensors()
    optimizer_tensors, optimizer_settings = ckpt.optimizer_tensors(optimizer)
    tensors.update(optimizer_tensors)
    tensors["torch_rng_state"] = torch.get_rng_state()
    state = {
        "config": config.to_dict(),
        "note_rnn_config": asdict(agent.reward_rnn.config),
        "progress": asdict(progress),
        "exploration_rng": rng.bit_generator.state,
        "predict_rng": agent.predict_rng.bit_generator.state,
        "replay": replay.state(),
        "optimizer": optimizer_settings,
    }
    return tensors, state


class Trainer:
    """One run: built fresh or from a checkpoint, on envs built from the config or given.

    Args:
        config: the run's configuration (on ``resume``, only its ``total_steps`` and
            ``progress_bar`` are used; the rest comes from the checkpoint).
        run_dir: where checkpoints (every ``checkpoint_every`` steps), samples and the summary
            go; ``None`` for none of them (the :class:`~agents.tuner.RLTuner` API, which saves on
            request).
        resume: continue from ``run_dir``'s latest checkpoint.
        log: print progress messages (the tqdm bar follows ``config.progress_bar``).
        envs: a vector env of melody envs to train on (its reward, key and reward RNN); ``None``
            builds ``config.num_envs`` envs of ``config.env`` around the reward RNN of
            ``config.env.reward_rnn``. Given envs also serve the periodic evaluation.
        checkpoint: a checkpoint to start from (its networks, optimiser, replay, generators and
            counters) with ``config`` as given (:meth:`agents.tuner.RLTuner.load`).
        tensorboard_log: TensorBoard folder; by default ``run_dir/tensorboard`` (none without a
            ``run_dir``).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | os.PathLike | None = None,
        resume: bool = False,
        log=print,
        envs: gym.vector.VectorEnv | None = None,
        checkpoint: ckpt.Checkpoint | None = None,
        tensorboard_log: str | os.PathLike | type[_RunFolder] | None = _RunFolder,
    ) -> None:
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.log = log
        loaded = checkpoint
        if resume:
            try:
                loaded = ckpt.load_checkpoint(self.run_dir)
            except FileNotFoundError as error:
                raise FileNotFoundError(
                    f"cannot resume: {error}. Start a new run without --resume."
                ) from error
            # The flags of the resuming command line: the budget and how progress is shown.
            config = replace(
                loaded.config, total_steps=config.total_steps, progress_bar=config.progress_bar
            )
            # A kill while the summary or the samples were written leaves their temporary files.
            for folder in (self.run_dir, self.run_dir / "samples"):
                remove_temporaries(folder)
        elif self.run_dir is not None and (self.run_dir / ckpt.CHECKPOINTS / ckpt.LATEST).exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run; pass --resume to continue it or choose "
                "another --out"
            )
        if tensorboard_log is _RunFolder:
            tensorboard_log = None if self.run_dir is None else self.run_dir / "tensorboard"
        self.tensorboard_log = tensorboard_log
        self.config = config
        torch.set_num_threads(config.torch_threads)
        torch.manual_seed(config.seed)
        if loaded:
            note_rnn = loaded.note_rnn()
        elif envs is not None:
            note_rnn = env_reward_rnn(envs)  # the Q-network starts as the env's own reward RNN
        else:
            note_rnn = load_note_rnn(config.env.reward_rnn)
        self.agent = RLTunerAgent(config, note_rnn)
        self.optimizer = torch.optim.Adam(
            self.agent.q_network.parameters(), lr=config.learning_rate
        )
        self.replay = CompositionReplay(
            config.replay_compositions,
            config.env.composition_length,
            config.env.primer_context,
            seed=int(np.random.SeedSequence([config.seed, 10]).generate_state(1)[0]),
        )
        self.rng = np.random.default_rng(np.random.SeedSequence([config.seed, 11]))
        self.progress = Progress(next_checkpoint_step=config.checkpoint_every)
        if loaded:
            self._restore(loaded)
        self.given_envs = envs is not None
        self.envs = (
            envs
            if envs is not None
            else make_vector_env(config, config.num_envs, self.agent.reward_rnn)
        )
        self._eval_envs = None

    def _restore(self, loaded: ckpt.Checkpoint) -> None:
        self.agent.load_named_tensors(loaded.tensors, source=str(loaded.weights_path))
        try:
            ckpt.load_optimizer(self.optimizer, loaded.tensors, loaded.state["optimizer"])
            torch.set_rng_state(loaded.tensors["torch_rng_state"])
            self.rng.bit_generator.state = loaded.state["exploration_rng"]
            self.agent.predict_rng.bit_generator.state = loaded.state["predict_rng"]
            self.replay.load(loaded.replay_path, loaded.state["replay"])
            self.progress = Progress(**loaded.state["progress"])
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            # numpy, torch and the dataclass name neither the checkpoint nor the field
            raise ValueError(
                f"checkpoint {loaded.directory} cannot be restored: {type(error).__name__}: {error}"
            ) from error
        self.log(f"resumed from {loaded.directory} at step {self.progress.global_step:,}")

    @property
    def eval_envs(self):
        if self.given_envs:
            return self.envs  # each evaluation resets them with its own seeds
        if self._eval_envs is None:
            self._eval_envs = make_vector_env(
                self.config, self.config.eval_num_envs, self.agent.reward_rnn
            )
        return self._eval_envs

    # --- the loop

    def learn(self, callback: Any = None, progress_bar: bool | None = None) -> None:
        """Act and learn until ``config.total_steps`` transitions, in rounds of compositions.

        Between rounds: the periodic evaluation (``eval_every``), and with a ``run_dir`` the
        periodic checkpoint (``checkpoint_every``) and a graceful stop on SIGINT/SIGTERM (a
        checkpoint, then :class:`~agents.run_control.Stopped`).

        Args:
            callback: an object with the hooks ``on_training_start(locals, globals)``,
                ``on_rollout_start()``, ``on_step() -> bool`` (after every vector step; ``False``
                stops training at the end of the round), ``on_rollout_end()`` (after every
                round) and ``on_training_end()``: see :func:`agents.tuner.as_callback`.
            progress_bar: a tqdm bar (default: ``config.progress_bar``).
        """
        config, progress = self.config, self.progress
        callback = callback if callback is not None else _NoCallback()
        writer = self.writer
        bar = self._progress_bar(config.progress_bar if progress_bar is None else progress_bar)
        stop = GracefulStop() if self.run_dir is not None else None
        if stop is not None:
            stop.__enter__()  # Ctrl-C / SIGTERM: finish the round, save, stop
        callback.on_training_start(locals(), globals())
        try:
            while progress.global_step < config.total_steps:
                if config.eval_every and progress.global_step >= progress.next_eval_step:
                    self._evaluate(writer)
                    progress.next_eval_step = progress.global_step + config.eval_every
                round_start = time.perf_counter()
                step_before = progress.global_step
                callback.on_rollout_start()
                self._on_step = callback.on_step
                finished = self._play_round(writer)
                progress.rounds += 1
                progress.train_seconds += time.perf_counter() - round_start
                recent_returns = self._log_round(writer, finished, step_before, round_start)
                if bar is not None:
                    bar.update(progress.global_step - step_before)
                    sps = (progress.global_step - step_before) / (time.perf_counter() - round_start)
                    bar.set_postfix(
                        SPS=f"{sps:.0f}",
                        eps=f"{self.epsilon:.3f}",
                        ret=f"{np.mean(recent_returns):.1f}",
                    )
                if (
                    self.run_dir is not None
                    and config.checkpoint_every
                    and progress.global_step >= progress.next_checkpoint_step
                ):
                    progress.next_checkpoint_step = progress.global_step + config.checkpoint_every
                    self.save()
                callback.on_rollout_end()
                if stop is not None and stop.requested:
                    raise self._stop(stop.signal)
                if self._stop_requested:
                    break
        finally:
            self._stop_requested = False
            self._on_step = None
            if stop is not None:
                stop.__exit__()
            if bar is not None:
                bar.close()
            writer.flush()
        callback.on_training_end()

    _on_step: Callable[[], bool] | None = None
    _stop_requested: bool = False

    def train(self, on_trained: Callable[[], None] | None = None) -> dict[str, Any]:
        """Train to ``total_steps``, then write the final checkpoint, samples and summary.

        Args:
            on_trained: called once training and the final checkpoint are done, before the
                summary's evaluation (e.g. to measure the trained state on its own).
        """
        started = time.perf_counter()
        self.learn()
        if not self._saved_at_current_step():
            self.save()
        if on_trained is not None:
            on_trained()
        return self.finish(time.perf_counter() - started)

    @property
    def epsilon(self) -> float:
        return dqn.epsilon(self.config, self.progress.global_step)

    @property
    def learning_rate(self) -> float:
        """The step size now: constant, or linearly annealed to ``final_learning_rate``."""
        return dqn.learning_rate(self.config, self.progress.global_step)

    def dqn_run(self) -> dqn.Run:
        """This run's state as :mod:`agents.rl_tuner.dqn` reads it (the same objects, shared)."""
        return dqn.Run(
            self.config,
            self.progress,
            self.envs,
            self.agent,
            self.optimizer,
            self.replay,
            self.rng,
        )

    def _play_round(self, writer) -> Compositions | None:
        """One round of :func:`agents.rl_tuner.dqn.play_round` (acting, learning, storing)."""
        run = self.dqn_run()

        def log_losses(stats: dqn.StepStats) -> None:
            step = self.progress.global_step
            if self.progress.gradient_steps % 50 == 1:
                for name, value in asdict(stats).items():
                    writer.add_scalar(f"losses/{name}", value, step)

        finished, stop = dqn.play_round(run, log_losses, self._on_step)
        self._stop_requested = self._stop_requested or stop
        return finished

    # --- logging, evaluation, persistence

    @cached_property
    def writer(self):
        """The TensorBoard writer of ``tensorboard_log`` (a no-op one without it)."""
        if self.tensorboard_log is None:
            return _NullWriter()
        from torch.utils.tensorboard import SummaryWriter

        purge = self.progress.global_step if self.progress.global_step else None
        return SummaryWriter(str(self.tensorboard_log), purge_step=purge)

    def _progress_bar(self, show: bool):
        if not show:
            return None
        from tqdm import tqdm

        return tqdm(
            total=self.config.total_steps,
            initial=min(self.progress.global_step, self.config.total_steps),
            unit="step",
            desc=f"{self.config.algo}",
            dynamic_ncols=True,
        )

    def _log_round(self, writer, finished, step_before, round_start) -> list[float]:
        step = self.progress.global_step
        seconds = max(time.perf_counter() - round_start, 1e-9)
        writer.add_scalar("charts/SPS", (step - step_before) / seconds, step)
        writer.add_scalar("charts/epsilon", self.epsilon, step)
        writer.add_scalar("charts/learning_rate", self.learning_rate, step)
        if finished is None:
            return [0.0]
        returns = finished.rewards.sum(axis=1)
        writer.add_scalar("charts/episodic_return", float(returns.mean()), step)
        writer.add_scalar(
            "charts/music_theory", float(finished.music_theory.sum(axis=1).mean()), step
        )
        writer.add_scalar("charts/log_prob", float(finished.log_prob.mean()), step)
        for name, values in finished.terms.items():
            writer.add_scalar(f"rewards/{name}", float(values.sum(axis=1).mean()), step)
        return returns.tolist()

    def _evaluate(self, writer) -> dict[str, float]:
        config = self.config
        index = self.progress.global_step
        compositions = compose(
            self.agent,
            self.eval_envs,
            config.eval_compositions,
            seed=config.seed,
            purpose="eval",
            temperature=config.temperature,
        )
        stats = composition_stats(compositions)
        for name, value in stats.items():
            if np.isfinite(value):
                writer.add_scalar(f"eval/{name}", value, index)
        writer.flush()
        self.log(
            f"eval @ {index:,}: r_MT/step {stats['music_theory']:.2f}, "
            f"log p {stats['log_prob']:.2f}, not in key {100 * stats['not_in_key']:.1f}%, repeated "
            f"{100 * stats['excessively_repeated']:.2f}%, tonic "
            f"{100 * stats['starts_with_tonic']:.0f}%"
        )
        return stats

    def _saved_at_current_step(self) -> bool:
        latest = self.run_dir / ckpt.CHECKPOINTS / ckpt.LATEST
        if not latest.is_file():
            return False
        return json.loads(latest.read_text()).get("step") == self.progress.global_step

    def _stop(self, signum: int) -> Stopped:
        """Checkpoint now (between rounds, like any checkpoint) and say how to resume."""
        if not self._saved_at_current_step():
            self.save()
        name = signal.Signals(signum).name
        return Stopped(
            signum,
            f"stopped by {name} at step {self.progress.global_step:,} of "
            f"{self.config.total_steps:,}; checkpoint saved; resume with: melody-rl train "
            f"--resume --out {shlex.quote(str(self.run_dir))}",
        )

    def save(self, run_dir: str | os.PathLike | None = None) -> Path:
        """Write a checkpoint of the current state (between rounds) into ``run_dir`` (default:
        the run's folder) and return its folder."""
        tensors, state = checkpoint_state(
            self.config, self.agent, self.optimizer, self.replay, self.rng, self.progress
        )
        folder = self.run_dir if run_dir is None else Path(run_dir)
        if folder is None:
            raise ValueError("this run has no folder: pass one to save(path)")
        return ckpt.save_checkpoint(
            folder, self.progress.global_step, tensors, state, self.replay.save
        )

    def finish(self, total_seconds: float) -> dict[str, Any]:
        """The run's ``summary.json``/``summary.md`` and MIDI samples in ``run_dir`` (see
        :func:`~agents.rl_tuner.summary.evaluation_summary`); returns the summary."""
        config, progress, writer = self.config, self.progress, self.writer
        summary: dict[str, Any] = {
            "config": config.to_dict(),
            "global_step": progress.global_step,
            "gradient_steps": progress.gradient_steps,
            "train_seconds": progress.train_seconds,
        }
        results = []
        if config.summary_compositions:
            # The evaluation suite's report: Table 1, the music rows and the KL to the prior.
            columns, results = evaluation_summary(self.agent, config)
            summary.update(columns)
            for name, value in summary["sampled"].items():
                if np.isfinite(value):
                    writer.add_scalar(f"final/{name}", value, progress.global_step)
            sampled = next(r for r in results if r.name.endswith("sampled"))
            width = max(3, len(str(config.num_samples - 1)))
            for index, tokens in enumerate(sampled.tokens[: config.num_samples]):
                write_midi(self.run_dir / "samples" / f"sample_{index:0{width}d}.mid", tokens)
        summary["total_seconds"] = total_seconds
        write_summary(self.run_dir, summary, results)
        writer.close()
        return summary


def train(
    config: TrainConfig, run_dir: str | os.PathLike, resume: bool = False, log=print
) -> dict[str, Any]:
    """Train (or resume) a run in ``run_dir``; return its summary: :func:`agents.tuner.train_run`
    (``log`` other than ``print`` silences the messages)."""
    from agents.tuner import train_run

    return train_run(config, run_dir, resume=resume, verbose=int(log is print))
