"""``MelodyCompositionEnv``: compose a monophonic melody note by note (RL Tuner)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import pretty_midi
from gymnasium import spaces

from melody_env.envs.env_config import (  # noqa: F401  (also re-exported from here)
    DEFAULT_COMPOSITION_LENGTH,
    DEFAULT_PRIMER_CONTEXT,
    DEFAULT_STEPS_PER_BAR,
    MAX_COMPOSITION_LENGTH,
    MAX_SHAPE_ARGUMENT,
    RENDER_MODES,
    EnvConfig,
    check_length,
    check_qpm,
    check_render_mode,
    env_config_of,
    load_reward_rnn,
    set_up_env,
)
from melody_env.envs.priming import check_key, check_primer, resolve_key, resolve_primer
from melody_env.envs.single_state import SingleCompositionState
from melody_env.music.encoding import NOTE_OFF, NUM_CLASSES
from melody_env.music.keys import Key


def check_options(options: Any) -> dict[str, Any]:
    """``reset``'s ``options`` as a new dict (``None`` as an empty one); else ``ValueError``."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ValueError(
            f"reset options must be a dict such as {{'key': 'G major'}} or None, got {options!r}"
        )
    return dict(options)


class MelodyCompositionEnv(gym.Env):
    """Compose a melody one sixteenth note at a time, rewarded by music theory and a Note RNN.

    ## Description

    The RL Tuner task of Jaques et al., "Tuning Recurrent Neural Networks with Reinforcement
    Learning" (2017). An agent writes a monophonic melody of ``composition_length`` sixteenth
    steps after a primer. Each step it places one token of Magenta's melody encoding. It is
    rewarded for following rules of music theory (stay in key, begin and end on the tonic, do not
    repeat a note, play motifs, prefer steps and resolve leaps...) while staying likely under a
    frozen LSTM "Note RNN" pretrained on folk melodies (the *reward RNN*).

    ## Action Space

    ``Discrete(38)``: 0 = hold (the sounding note or silence goes on), 1 = rest (note off),
    2..37 = a note onset of MIDI pitch 48..83 (C3..B5).

    ## Observation Space

    ``MultiBinary(38 * (1 + L + P) + L + S + 14)`` (dtype ``int8``), all one-hot, with
    ``L = composition_length``, ``P = primer_context``, ``S = steps_per_bar`` (1,620 values by
    default). In order: the last token (38; enough for a recurrent agent), the composition so
    far (38 per slot), the last ``P`` primer tokens (38 each), the step in the composition (L),
    the step in the bar (S), the key's tonic (12) and mode (2). See
    :mod:`melody_env.envs.observation`; ``gymnasium.wrappers.DtypeObservation(env, np.float32)``
    gives the same values as a float32 ``Box``.

    ## Rewards

    ``reward = sum(weight * term)`` over named terms (:mod:`melody_env.rewards`). By default
    (``reward_mode="music_theory_all"``): ``reward_scaler * r_MT + log p(a | history)`` with the
    paper's ``c = 0.5``, i.e. ``reward_scaler = 2.0``. ``r_MT`` sums nine rules:

    =====================  ==================================================================
    term                   value
    =====================  ==================================================================
    key                    -1 for a note outside the key
    tonic                  +3 tonic first; +3 each for tonic, hold, hold/rest, hold/rest at end
    repeated_notes         -100 for the 6th identical token in a row (8th with holds/rests)
    autocorrelation        -3 |rho_k| per lag k = 1..3 with |rho_k| > 0.15 (melodic line)
    motif                  +3 (+0.3 per extra pitch) if the last 8 steps hold >= 3 pitches
    repeated_motif         +4 (+1 per extra pitch) if that motif was already played
    preferred_intervals    5 x base: 2nd 0.4, 3rd 0.45-0.75, 4th 0.35, 5th 0.1-0.5, 6th 0.25,
                           7th -1.5, > octave -5, hold 0.375-1.5, rest 0.25-0.75
    leap_resolution        +5 when a leap (>= a fifth) is resolved, -5 if doubled
    unique_extremes        last step: +3 if the top pitch is played once, +3 for the bottom
    =====================  ==================================================================

    ``info`` carries the breakdown: ``reward_terms`` (each active term), ``music_theory``
    (r_MT), ``log_prob`` and ``prior_log_probs`` (the reward RNN's 38 log-probabilities for the
    next step, which G-learning needs; ``reset`` returns the first ones).

    ## Starting State

    A primer: one token drawn uniformly from all 38 (default), given tokens, or the first
    monophonic line of a MIDI file transposed to the key. The reward RNN reads the primer; the
    primer is not part of the composition.

    ## Episode End

    The episode terminates after ``composition_length`` steps. There is no truncation.

    ## Arguments

    The fields of :class:`~melody_env.envs.env_config.EnvConfig`, as keywords or as one
    ``config=EnvConfig(...)`` (keywords then override its fields):

    - ``key``: ``"C major"`` (default) or any of the 24 major/minor keys, e.g. ``"F# minor"``;
      or ``"any"``: a key drawn uniformly from the 24 at each reset (from the env's seeded
      ``np_random``, before the primer), shown in the observation and ``info["key"]``. The
      reward RNN, trained in C major and A minor, reads each melody transposed into the one of
      those with the episode's mode (see :mod:`melody_env.music.transposition`).
    - ``primer``: ``None``, a list of tokens, or a MIDI file path.
    - ``composition_length`` (32, at most 10,000), ``steps_per_bar`` (16), ``primer_context`` (8).
    - ``reward_mode`` (``"music_theory_all"``), ``reward_scaler`` (2.0), ``reward_terms`` (extra
      named callables), ``reward_weights`` (weight overrides).
    - ``reward_rnn``: a :class:`~melody_env.models.NoteRNN`, a checkpoint path, or ``None`` for
      the shipped model.
    - ``render_mode``: ``"ansi"`` (text piano roll) or ``"rgb_array"`` (piano-roll image).
    - ``qpm``: tempo of :meth:`to_pretty_midi` (80, as the original).

    ``reset(options={"key": ..., "primer": ...})`` overrides the key and primer for one episode.

    ## Version History

    - v0: the RL Tuner's rules in any key, with hold and rest in their real meaning and the
      original's bugs fixed (see the rule docstrings).

    ## Example

    >>> import gymnasium as gym
    >>> import melody_env
    >>> env = gym.make("melody_env/MelodyComposition-v0", key="G major")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, info["prior_log_probs"].shape
    ((1620,), (38,))
    >>> obs, reward, terminated, truncated, info = env.step(21)  # G4
    >>> info["reward_terms"]["tonic"], terminated
    (3.0, False)
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 4}

    def __init__(self, config: EnvConfig | None = None, **env_arguments: Any) -> None:
        config = set_up_env(self, config, env_arguments)
        self.action_space = spaces.Discrete(NUM_CLASSES)
        self.observation_space = self.layout.space
        self._state = SingleCompositionState(
            config.composition_length, self.reward_rnn, self.reward_function
        )
        self._obs = np.zeros((1, self.layout.size), dtype=self.observation_space.dtype)
        self._obs_row = self._obs[0]
        self._episode_key = self.key if isinstance(self.key, Key) else Key()
        self._started = False

    @property
    def composition(self) -> np.ndarray:
        """The tokens placed so far in this episode."""
        return self._state.composition

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = check_options(options)
        unknown = set(options) - {"key", "primer"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; allowed: 'key', 'primer'")
        key_spec = check_key(options["key"]) if "key" in options else self.key
        primer_spec = check_primer(options["primer"]) if "primer" in options else self.primer
        key = resolve_key(key_spec, self.np_random)
        primer = resolve_primer(primer_spec, key, self.np_random)
        self._episode_key = key
        self._state.reset(primer, key)
        self.layout.write_reset(self._obs, [primer], [key])
        self._started = True
        info = {
            "prior_log_probs": self._state.next_log_probs.copy(),
            "key": key.name,
            "primer": primer.copy(),
        }
        return self._obs[0].copy(), info

    def step(self, action):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._state.finished:
            raise RuntimeError(
                f"the composition is finished ({self._state.length} steps); call reset() first"
            )
        token = self._check_action(action)
        state = self._state
        breakdown = state.advance(token)
        self.layout.write_step(self._obs_row, state.step - 1, token)
        reward = float(breakdown.total)
        info = {
            "reward_terms": {name: float(value) for name, value in breakdown.terms.items()},
            "music_theory": float(breakdown.music_theory),
            "log_prob": float(breakdown.log_prob),
            "prior_log_probs": state.next_log_probs.copy(),
        }
        return self._obs_row.copy(), reward, state.finished, False, info

    @staticmethod
    def _check_action(action) -> int:
        if type(action) is int and 0 <= action < NUM_CLASSES:  # the common case, checked fast
            return action
        array = np.asarray(action)
        if (
            array.ndim != 0
            or not np.issubdtype(array.dtype, np.integer)
            or not 0 <= int(array) < NUM_CLASSES
        ):
            raise ValueError(
                f"invalid action {action!r}; expected an integer token in [0, {NUM_CLASSES - 1}] "
                "(0 = hold, 1 = rest, 2..37 = MIDI pitches 48..83)"
            )
        return int(array)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; pass render_mode='ansi'")
            return None
        from melody_env.io import render

        tokens = self._state.composition
        steps_per_bar = self.layout.steps_per_bar
        if self.render_mode == "ansi":
            primer = self._state.primer
            return render.render_ansi(
                tokens, self._episode_key, self._state.step, steps_per_bar, primer
            )
        # A fixed-size image: the steps not played yet are drawn as silence (a note-off, holds).
        padded = np.zeros(self._state.length, dtype=np.int64)
        padded[: len(tokens)] = tokens
        if len(tokens) < len(padded):
            padded[len(tokens)] = NOTE_OFF
        return render.render_rgb(padded, self._episode_key, steps_per_bar)

    def to_pretty_midi(self) -> pretty_midi.PrettyMIDI:
        """The composition so far as a ``pretty_midi.PrettyMIDI`` (at ``qpm``)."""
        from melody_env.io.midi_writer import tokens_to_pretty_midi

        return tokens_to_pretty_midi(self.composition, qpm=self.qpm)

    def to_midi(self, path: str | os.PathLike) -> None:
        """Write the composition so far to a MIDI file (atomically)."""
        from melody_env.io.midi_writer import write_midi

        write_midi(path, self.composition, qpm=self.qpm)
