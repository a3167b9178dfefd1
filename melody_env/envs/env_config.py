"""``EnvConfig``: the one list of the melody env's arguments, their defaults and their checks.

The single env (:class:`~melody_env.MelodyCompositionEnv`), the native vector env
(:class:`~melody_env.MelodyCompositionVectorEnv`), :func:`melody_env.evaluation.evaluate` and the
agents all take their env arguments from this dataclass, so a name, a default or a check is
written once.

>>> config = EnvConfig(key="g major", composition_length=16)
>>> config.key, config.env_kwargs()["composition_length"]
('G major', 16)
>>> EnvConfig.from_dict(config.to_dict()) == config
True
>>> EnvConfig(steps_per_bar=0)
Traceback (most recent call last):
...
ValueError: steps_per_bar must be an integer >= 1, got 0
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from melody_env.envs.priming import ANY_KEY, check_key, check_primer
from melody_env.models.note_rnn import NoteRNN
from melody_env.rewards.composition import RewardFunction, RewardTerm

DEFAULT_COMPOSITION_LENGTH = 32
DEFAULT_STEPS_PER_BAR = 16
DEFAULT_PRIMER_CONTEXT = 8

MAX_COMPOSITION_LENGTH = 10_000
"""Longest composition: the autocorrelation rule's integer sums stay exact in ``int64`` (up to
about 80,000 notes), and a one-hot observation is already ``38 * L`` floats."""

MAX_SHAPE_ARGUMENT = 1024
"""Largest ``steps_per_bar`` and ``primer_context``."""

RENDER_MODES = ("ansi", "rgb_array")
"""The envs' render modes (their ``metadata["render_modes"]``)."""


def check_length(composition_length: int, steps_per_bar: int, primer_context: int) -> None:
    """Validate the episode shape arguments; ``ValueError`` naming the bad one."""
    for name, value, minimum in (
        ("composition_length", composition_length, 1),
        ("steps_per_bar", steps_per_bar, 1),
        ("primer_context", primer_context, 0),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    for name, value in (("steps_per_bar", steps_per_bar), ("primer_context", primer_context)):
        if value > MAX_SHAPE_ARGUMENT:  # both size the observation: refuse before allocating
            raise ValueError(f"{name} must be at most {MAX_SHAPE_ARGUMENT:,}, got {value!r}")
    if composition_length > MAX_COMPOSITION_LENGTH:
        raise ValueError(
            f"composition_length must be at most {MAX_COMPOSITION_LENGTH:,}, got "
            f"{composition_length!r}"
        )


def check_qpm(qpm: float) -> float:
    """``qpm`` if it is a tempo :func:`~melody_env.io.midi_writer.tokens_to_pretty_midi` takes."""
    from melody_env.io.midi_writer import tokens_to_pretty_midi

    tokens_to_pretty_midi([], qpm=qpm)
    return qpm


def check_render_mode(render_mode: str | None, allowed: list[str] | tuple[str, ...]) -> None:
    """Validate ``render_mode`` against an env's ``metadata["render_modes"]``."""
    if render_mode is not None and render_mode not in allowed:
        raise ValueError(
            f"unknown render_mode {render_mode!r}; choose one of {list(allowed)} or None"
        )


def check_reward_rnn(reward_rnn: Any) -> None:
    """``reward_rnn`` must be a :class:`NoteRNN`, a checkpoint path or ``None``."""
    if not isinstance(reward_rnn, (NoteRNN, str, os.PathLike, type(None))):
        raise ValueError(
            f"reward_rnn must be a NoteRNN, a .safetensors path or None, got {reward_rnn!r:.60}"
        )


def load_reward_rnn(reward_rnn: NoteRNN | str | os.PathLike | None) -> NoteRNN:
    """A frozen Note RNN from an instance, a checkpoint path, or the shipped default (``None``)."""
    check_reward_rnn(reward_rnn)
    model = reward_rnn if isinstance(reward_rnn, NoteRNN) else NoteRNN.load(reward_rnn)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


@dataclass(frozen=True)
class EnvConfig:
    """The arguments of the melody env (single or vector), checked when the config is made.

    Values are kept in a canonical form: ``key`` as its name (``"g major"`` -> ``"G major"``,
    ``"any"``), a primer of tokens as a tuple of ints, paths as strings, the reward dicts as new
    dicts.
    """

    key: str = "C major"
    """Key of every composition: one of the 24 names (``"F# minor"``), or ``"any"`` for a key
    drawn uniformly at each reset (the reward RNN reads each melody transposed into C major or A
    minor). A :class:`~melody_env.music.keys.Key` is accepted and stored as its name."""
    primer: str | tuple[int, ...] | None = None
    """What the composition follows: ``None`` (one token drawn uniformly from the 38 at each
    reset), tokens, or a MIDI file whose first monophonic line is transposed to the key."""
    composition_length: int = DEFAULT_COMPOSITION_LENGTH
    """Sixteenth steps per composition (32 = two bars, as the paper); at most 10,000."""
    steps_per_bar: int = DEFAULT_STEPS_PER_BAR
    """Sixteenths per bar: sizes the observation's step-in-bar one-hot (at most 1,024)."""
    primer_context: int = DEFAULT_PRIMER_CONTEXT
    """Last primer tokens shown in the observation (at most 1,024)."""
    reward_mode: str = "music_theory_all"
    """Reward preset (:data:`melody_env.rewards.REWARD_MODES`): which terms, at which weights."""
    reward_scaler: float = 2.0
    """``1 / c``: weight of the music-theory terms (the paper's ``c = 0.5``)."""
    reward_terms: Mapping[str, RewardTerm] | None = None
    """Extra reward terms by name, each a callable ``RewardContext -> float [B]`` (weight 1
    unless :attr:`reward_weights` says otherwise). Not storable in a checkpoint."""
    reward_weights: Mapping[str, float] | None = None
    """Weight overrides by term name; 0 switches a term off."""
    reward_rnn: NoteRNN | str | None = None
    """The frozen Note RNN of the ``log p`` term and of ``prior_log_probs``: a model, a
    ``.safetensors`` path, or ``None`` for the shipped one."""
    render_mode: str | None = None
    """``"ansi"`` (text piano roll), ``"rgb_array"`` (piano-roll image) or ``None``."""
    qpm: float = 80.0
    """Tempo of the MIDI export (``to_midi``), in quarter notes per minute (the original's)."""

    def __post_init__(self) -> None:
        check_length(self.composition_length, self.steps_per_bar, self.primer_context)
        check_render_mode(self.render_mode, RENDER_MODES)
        check_reward_rnn(self.reward_rnn)
        key = check_key(self.key)
        primer = check_primer(self.primer)
        if primer is not None:
            primer = (
                str(primer) if isinstance(primer, (str, os.PathLike)) else tuple(map(int, primer))
            )
        set_field = object.__setattr__  # frozen: canonical forms are set once, here
        set_field(self, "key", ANY_KEY if key == ANY_KEY else key.name)
        set_field(self, "primer", primer)
        set_field(self, "qpm", check_qpm(self.qpm))
        if isinstance(self.reward_rnn, os.PathLike):
            set_field(self, "reward_rnn", os.fspath(self.reward_rnn))
        for name in ("reward_terms", "reward_weights"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                set_field(self, name, dict(value))
        self.reward_function()  # checks the reward arguments the way the envs use them

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The env arguments, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes: Any) -> EnvConfig:
        """A copy with ``changes`` applied; ``ValueError`` naming an unknown argument."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(
                f"unknown env argument(s) {unknown}; allowed: {list(self.field_names())}"
            )
        return dataclasses.replace(self, **changes) if changes else self

    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``gymnasium.make(ENV_ID, ...)`` and ``gymnasium.make_vec``."""
        return {name: getattr(self, name) for name in self.field_names()}

    def reward_function(self) -> RewardFunction:
        """A new :class:`~melody_env.rewards.composition.RewardFunction` of the reward fields."""
        return RewardFunction(
            self.reward_mode, self.reward_scaler, self.reward_terms, self.reward_weights
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, for checkpoints; ``ValueError`` for what JSON cannot hold (a
        ``NoteRNN`` object, extra reward terms)."""
        if isinstance(self.reward_rnn, NoteRNN):
            raise ValueError(
                "to_dict cannot store a NoteRNN object as reward_rnn; save it "
                "(NoteRNN.save) and pass its .safetensors path, or None for the shipped one"
            )
        if self.reward_terms:
            raise ValueError(
                f"to_dict cannot store the callables of reward_terms {sorted(self.reward_terms)}; "
                "pass them again when the env is rebuilt"
            )
        data = self.env_kwargs()
        data["primer"] = list(self.primer) if isinstance(self.primer, tuple) else self.primer
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvConfig:
        """Rebuild from :meth:`to_dict`; ``ValueError`` naming unknown fields."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an EnvConfig is a dict of env arguments, got {data!r:.80}")
        unknown = sorted(set(data) - set(cls.field_names()))
        if unknown:
            raise ValueError(
                f"unknown EnvConfig fields {unknown}; known: {sorted(cls.field_names())}"
            )
        return cls(**data)


def env_config_of(config: EnvConfig | None, arguments: Mapping[str, Any]) -> EnvConfig:
    """``config`` (default: :class:`EnvConfig`'s defaults) with keyword ``arguments`` applied:
    how the envs read ``gymnasium.make(ENV_ID, config=..., key=...)``."""
    if config is not None and not isinstance(config, EnvConfig):
        raise ValueError(f"config must be an EnvConfig or None, got {config!r:.80}")
    return (config or EnvConfig()).replace(**arguments)


def set_up_env(env: Any, config: EnvConfig | None, arguments: Mapping[str, Any]) -> EnvConfig:
    """Give ``env`` (the single or the vector env) the attributes both build from their
    arguments: ``config``, ``key`` (a :class:`Key` or ``"any"``), ``primer`` (checked),
    ``render_mode``, ``qpm``, ``layout`` (the observation), ``reward_function`` and the frozen
    ``reward_rnn``; return the config."""
    from melody_env.envs.observation import ObservationLayout

    config = env_config_of(config, arguments)
    env.config = config
    env.key = check_key(config.key)
    env.primer = check_primer(config.primer)
    env.render_mode = config.render_mode
    env.qpm = config.qpm
    env.layout = ObservationLayout(
        config.composition_length, config.primer_context, config.steps_per_bar
    )
    env.reward_function = config.reward_function()
    env.reward_rnn = load_reward_rnn(config.reward_rnn)
    return config
