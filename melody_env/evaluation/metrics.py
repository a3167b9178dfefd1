"""Music-theory statistics of finished compositions (the original's evaluation, spec §4.2).

Compositions are replayed through the env's own engine: a
:class:`~melody_env.envs.composition_state.CompositionState` whose reward function is wrapped by
a :class:`StatisticsRecorder`. So every statistic is read off the same detector call and the same
reward rule the env uses at that step (one implementation), in any key. The result is a *table*:
a dict of per-composition columns (``[n]`` arrays), from which :data:`STATISTICS` are ratios of
column sums (see :mod:`melody_env.evaluation.stats` for confidence intervals).

Definitions, per step (token) unless said otherwise, with the env's meanings of hold (0) and
rest (1):

- *excessively repeated*: :func:`~melody_env.music.theory.is_excessive_repetition` (the -100 rule).
- *not in key*: a note outside the key; hold and rest are in every key (the -1 rule).
- *starts with tonic*: the first token is the tonic, in any octave (the original: middle C only).
- *leaps resolved*: resolved / (resolved + doubled) leaps of
  :func:`~melody_env.music.theory.leap_step`; leaps never answered do not count, as in the
  original.
- *unique max / min*: the highest / lowest pitch of the composition is played once
  (:func:`~melody_env.music.theory.unique_extremes`; the original took the maximum over all
  tokens, specials included).
- *in motif*: the last 8 tokens hold at least 3 distinct pitches (the motif rule fires);
  *in repeated motif*: the repeated-motif rule fires.
- *autocorrelation lag k*: ``rho_k`` of the finished composition's melodic line (the pitches of
  its onsets, :func:`~melody_env.music.theory.onset_autocorrelation`), averaged over the
  compositions where it is defined (at least two distinct pitches), as the original's
  ``nanmean``. The original correlated raw token indices, hold and rest included.
- *intervals*: from each note to the previous note of the composition, by size in semitones,
  direction ignored: seconds 1-2, thirds 3-4, fourths 5, tritones 6, fifths 7, sixths 8-9,
  sevenths 10-11, octaves 12, *octave jumps* more than 12. *In-key preferred* intervals are the
  interval rule's in-key thirds and fifths (within the tonic triad). *Rests* are rest tokens
  after the first note. Counting fixes: the original compared the interval code with
  ``(IN_KEY_FIFTH or IN_KEY_THIRD)``, which is just ``IN_KEY_FIFTH``, so in-key thirds were
  counted nowhere; it counted only the exact distances 2, 4, 9 and 11 as seconds, thirds, sixths
  and sevenths (minor intervals nowhere) and left in-key thirds and fifths out of the thirds and
  fifths. Here every interval falls in exactly one size class, and the in-key ones are counted
  in their size class too.
- *rewards*: the sum over the composition of r_MT and of each of its nine rules, of log p under
  the reward RNN (given the primer) and of the env's reward.
- *variety*: entropy (bits) of the pitch classes of the onsets, pitch range (semitones), number
  of distinct pitches, counts of hold and rest tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from melody_env.envs.composition_state import CompositionState
from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig
from melody_env.music import theory
from melody_env.music.encoding import (
    NO_EVENT,
    NOT_A_PITCH,
    NOTE_OFF,
    TOKEN_PITCHES,
    validate_tokens,
)
from melody_env.music.keys import Key
from melody_env.rewards.composition import RewardBreakdown, RewardFunction
from melody_env.rewards.context import RewardContext
from melody_env.rewards.rules import MIN_MOTIF_NOTES, MUSIC_THEORY_RULES

Table = dict[str, np.ndarray]
"""Per-composition columns: name -> ``[n]`` array."""

AUTOCORRELATION_LAGS = theory.AUTOCORRELATION_LAGS
INTERVAL_SIZES: dict[str, tuple[int, int]] = {
    "unisons": (0, 0),
    "seconds": (1, 2),
    "thirds": (3, 4),
    "fourths": (5, 5),
    "tritones": (6, 6),
    "fifths": (7, 7),
    "sixths": (8, 9),
    "sevenths": (10, 11),
    "octaves": (12, 12),
    "octave_jumps": (13, 10_000),
}
"""Interval classes by distance in semitones (inclusive bounds); they cover every interval."""
RULE_COLUMNS = tuple(f"reward/{name}" for name in MUSIC_THEORY_RULES)
STEP_COUNTS = (
    "excessively_repeated",
    "not_in_key",
    "in_motif",
    "in_repeated_motif",
    "starts_with_tonic",
    "leaps_resolved",
    "leaps_doubled",
    *(f"interval/{name}" for name in INTERVAL_SIZES),
    "interval/in_key_thirds",
    "interval/in_key_fifths",
    "interval/in_key_preferred",
    "interval/rests",
    "interval/rests_after_tonic_or_fifth",
    "hold_tokens",
    "rest_tokens",
    "note_tokens",
)
"""Columns counted step by step during the replay."""


class StatisticsRecorder:
    """A reward function for :class:`CompositionState` that also counts, per composition, what
    the detectors said at each step.

    It returns the wrapped reward function's breakdown unchanged, so a rollout driven by it
    earns exactly the env's rewards while it fills :attr:`columns`.

    Args:
        reward_function: the env's reward function (its terms feed the reward columns).
        batch_size: compositions in the batch.
    """

    def __init__(self, reward_function: RewardFunction, batch_size: int) -> None:
        self.reward_function = reward_function
        self.reset(batch_size)

    def reset(self, batch_size: int) -> None:
        """Zero the columns for a new batch of ``batch_size`` compositions."""
        self.batch_size = batch_size
        self.columns: Table = {name: np.zeros(batch_size, np.int64) for name in STEP_COUNTS}
        for name in (*RULE_COLUMNS, "music_theory", "log_prob", "total_reward"):
            self.columns[name] = np.zeros(batch_size, np.float64)

    def __call__(self, ctx: RewardContext) -> RewardBreakdown:
        breakdown = self.reward_function(ctx)
        columns = self.columns
        rules = {
            name: breakdown.terms[name] if name in breakdown.terms else rule(ctx)
            for name, rule in MUSIC_THEORY_RULES.items()
        }
        for name, value in rules.items():
            columns[f"reward/{name}"] += value
        columns["music_theory"] += breakdown.music_theory
        columns["log_prob"] += breakdown.log_prob
        columns["total_reward"] += breakdown.total

        pitch = ctx.pitch
        is_note = pitch != NOT_A_PITCH
        columns["excessively_repeated"] += ctx.is_repeating
        columns["not_in_key"] += ~theory.in_key(pitch, ctx.keys.scale_mask)
        columns["in_motif"] += ctx.motif_notes >= MIN_MOTIF_NOTES
        columns["in_repeated_motif"] += rules["repeated_motif"] > 0
        if ctx.step == 0:
            columns["starts_with_tonic"] += theory.is_pitch_class(pitch, ctx.keys.tonic)
        columns["leaps_resolved"] += ctx.leap_outcome == theory.LEAP_RESOLVED
        columns["leaps_doubled"] += ctx.leap_outcome == theory.LEAP_DOUBLED

        code = ctx.interval
        previous = theory.last_note_pitch(ctx.history)
        has_interval = is_note & (previous != NOT_A_PITCH)
        distance = np.abs(pitch - previous)
        for name, (low, high) in INTERVAL_SIZES.items():
            columns[f"interval/{name}"] += has_interval & (distance >= low) & (distance <= high)
        in_key_thirds = code == theory.IN_KEY_THIRD
        in_key_fifths = code == theory.IN_KEY_FIFTH
        columns["interval/in_key_thirds"] += in_key_thirds
        columns["interval/in_key_fifths"] += in_key_fifths
        columns["interval/in_key_preferred"] += in_key_thirds | in_key_fifths
        columns["interval/rests"] += (code == theory.REST_INTERVAL) | (
            code == theory.REST_AFTER_TONIC_OR_FIFTH
        )
        columns["interval/rests_after_tonic_or_fifth"] += code == theory.REST_AFTER_TONIC_OR_FIFTH
        columns["hold_tokens"] += ctx.action == NO_EVENT
        columns["rest_tokens"] += ctx.action == NOTE_OFF
        columns["note_tokens"] += is_note
        return breakdown


def composition_columns(tokens: np.ndarray) -> Table:
    """Statistics of whole compositions ``tokens [n, L]``: extremes, autocorrelation, variety.

    >>> table = composition_columns(np.array([[14, 0, 18, 0, 14, 1, 16, 0]]))  # C4 E4 C4 D4
    >>> table["unique_max"], table["unique_min"], table["distinct_pitches"], table["pitch_range"]
    (array([1]), array([0]), array([3]), array([4]))
    >>> float(table["pitch_class_entropy"][0])
    1.5
    """
    tokens = np.asarray(tokens)
    pitches = TOKEN_PITCHES[tokens]
    is_note = pitches != NOT_A_PITCH
    n = tokens.shape[0]
    high, low = theory.unique_extremes(tokens)
    counts = np.zeros((n, 12), np.int64)  # pitch-class histogram of the onsets
    rows, steps = np.nonzero(is_note)
    np.add.at(counts, (rows, pitches[rows, steps] % 12), 1)
    total = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(total, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(share > 0, share * np.log2(share), 0.0).sum(axis=1)
    has_notes = is_note.any(axis=1)
    top = np.where(is_note, pitches, -1).max(axis=1)
    bottom = np.where(is_note, pitches, 1000).min(axis=1)
    ordered = np.sort(np.where(is_note, pitches, NOT_A_PITCH), axis=1)
    distinct = ((ordered[:, 1:] != ordered[:, :-1]) & (ordered[:, 1:] != NOT_A_PITCH)).sum(axis=1)
    distinct = distinct + (ordered[:, :1] != NOT_A_PITCH).sum(axis=1)
    rho = theory.onset_autocorrelation(tokens, AUTOCORRELATION_LAGS)
    defined = distinct >= 2  # a constant line has no variance: the original's NaN
    table: Table = {
        "steps": np.full(n, tokens.shape[1], np.int64),
        "unique_max": high.astype(np.int64),
        "unique_min": low.astype(np.int64),
        "autocorrelation_defined": defined.astype(np.int64),
        "pitch_class_entropy": entropy + 0.0,  # + 0.0 turns -0.0 into 0.0
        "pitch_range": np.where(has_notes, top - bottom, 0),
        "distinct_pitches": distinct,
        "has_notes": has_notes.astype(np.int64),
    }
    for column, lag in enumerate(AUTOCORRELATION_LAGS):
        table[f"autocorrelation_lag{lag}"] = np.where(defined, rho[:, column], 0.0)
    return table


def _as_keys(keys: Key | str | Sequence[Key | str], n: int) -> list[Key]:
    if isinstance(keys, (Key, str)):
        return [Key.from_name(keys)] * n
    keys = [Key.from_name(key) for key in keys]
    if len(keys) != n:
        raise ValueError(f"got {len(keys)} keys for {n} compositions; give one key or one per row")
    return keys


def score_compositions(
    tokens: np.ndarray | Sequence[Sequence[int]],
    keys: Key | str | Sequence[Key | str] = "C major",
    primers: Sequence[Sequence[int]] | None = None,
    reward_rnn: NoteRNN | None = None,
    reward_function: RewardFunction | None = None,
    batch_size: int = 20_000,
) -> Table:
    """Replay finished compositions through the env's engine; return their statistics table.

    Args:
        tokens: ``[n, L]`` compositions.
        keys: one key for all, or one per composition.
        primers: the tokens each composition was written after. They matter only to log p (the
            reward RNN reads them first); default: one rest token.
        reward_rnn: the Note RNN scoring log p. ``None`` skips it: the ``log_prob`` and
            ``total_reward`` columns are NaN (the rules do not need it).
        reward_function: the env's reward (for ``total_reward``); default: the env's default,
            ``2 * r_MT + log p``.
        batch_size: compositions replayed at once (memory vs. speed).

    Returns:
        The table: the :data:`STEP_COUNTS`, the reward sums and :func:`composition_columns`.

    >>> from melody_env.music.encoding import token_from_name
    >>> melody = [token_from_name(name) for name in "G4 B4 D5 B4 G4 hold rest rest".split()]
    >>> table = score_compositions([melody], "G major")
    >>> int(table["starts_with_tonic"][0]), int(table["interval/in_key_thirds"][0])
    (1, 4)
    """
    tokens = validate_tokens(tokens, "compositions")
    if tokens.ndim != 2 or tokens.shape[1] == 0:
        raise ValueError(f"compositions must be an [n, L] array with L >= 1, got {tokens.shape}")
    n, length = tokens.shape
    all_keys = _as_keys(keys, n)
    if primers is None:
        all_primers = [np.array([NOTE_OFF])] * n
    else:
        all_primers = [validate_tokens(primer, "primer") for primer in primers]
        if len(all_primers) != n or any(p.ndim != 1 or p.size == 0 for p in all_primers):
            raise ValueError(f"give one non-empty primer per composition ({n}), or None")
    scoring_rnn = reward_rnn if reward_rnn is not None else _stand_in_rnn()
    reward_function = reward_function or RewardFunction()
    parts: list[Table] = []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        recorder = StatisticsRecorder(reward_function, stop - start)
        state = CompositionState(stop - start, length, scoring_rnn, recorder)
        state.reset(all_primers[start:stop], all_keys[start:stop])
        for step in range(length):
            state.advance(tokens[start:stop, step])
        parts.append(recorder.columns)
    table = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    if reward_rnn is None:
        table["log_prob"] = np.full(n, np.nan)
        table["total_reward"] = np.full(n, np.nan)
    table.update(composition_columns(tokens))
    return table


_STAND_IN: list[NoteRNN] = []


def _stand_in_rnn() -> NoteRNN:
    """A one-unit Note RNN that drives :class:`CompositionState` when log p is not wanted."""
    if not _STAND_IN:
        _STAND_IN.append(NoteRNN(NoteRNNConfig(hidden_size=1), seed=0).eval())
    return _STAND_IN[0]


def duplicate_rate(tokens: np.ndarray) -> float:
    """Share of compositions identical to an earlier one in the sample: ``1 - unique / n``.

    >>> duplicate_rate(np.array([[2, 0], [2, 0], [3, 0], [2, 0]]))
    0.5
    """
    tokens = np.asarray(tokens)
    if len(tokens) == 0:
        return float("nan")
    return 1.0 - len(np.unique(tokens, axis=0)) / len(tokens)


def table_from_reward_terms(terms: dict[str, np.ndarray]) -> Table:
    """The statistics that can be read off the env's per-step reward breakdown alone.

    A cross-check of :func:`score_compositions`, and a way to log Table-1 rates during training
    from ``info["reward_terms"]`` without a replay.

    Args:
        terms: each of the nine rules' unweighted values, ``[n, L]`` (``info["reward_terms"]``
            stacked over the steps), optionally ``"music_theory"`` and ``"log_prob"`` too.

    Returns:
        The columns they determine: the counts of excessive repetitions, out-of-key notes,
        notes in (repeated) motifs, resolved and doubled leaps, tonic starts, the number of
        unique extremes (``unique_extremes``: 0, 1 or 2), and the reward sums.
    """
    table: Table = {
        "excessively_repeated": (terms["repeated_notes"] < 0).sum(axis=1),
        "not_in_key": (terms["key"] < 0).sum(axis=1),
        "in_motif": (terms["motif"] > 0).sum(axis=1),
        "in_repeated_motif": (terms["repeated_motif"] > 0).sum(axis=1),
        "leaps_resolved": (terms["leap_resolution"] > 0).sum(axis=1),
        "leaps_doubled": (terms["leap_resolution"] < 0).sum(axis=1),
        "starts_with_tonic": (terms["tonic"][:, 0] > 0).astype(np.int64),
        "unique_extremes": np.rint(terms["unique_extremes"][:, -1] / 3.0).astype(np.int64),
    }
    for name in MUSIC_THEORY_RULES:
        table[f"reward/{name}"] = terms[name].sum(axis=1)
    for name in ("music_theory", "log_prob"):
        if name in terms:
            table[name] = terms[name].sum(axis=1)
    return table


@dataclass(frozen=True)
class Statistic:
    """One row of the report: ``sum(numerator) / sum(denominator)`` over the compositions.

    Attributes:
        name: key in the report's JSON.
        label: the row's text (the paper's wording for its Table 1 rows).
        numerator: a table column.
        denominator: a table column, or a sum of columns joined by ``+``.
        percent: shown as a percentage.
        group: the report section.
    """

    name: str
    label: str
    numerator: str
    denominator: str
    percent: bool = False
    group: str = "table1"


def _rate(column: str, label: str, denominator: str = "steps", group: str = "table1") -> Statistic:
    return Statistic(column, label, column, denominator, True, group)


def _mean(column: str, label: str, denominator: str, group: str) -> Statistic:
    return Statistic(column, label, column, denominator, False, group)


_LAG = "autocorrelation_lag"
_INTERVAL_LABELS = {
    "octave_jumps": "Octave jumps (more than an octave)",
    "sevenths": "Sevenths",
    "sixths": "Sixths",
    "fifths": "Fifths",
    "fourths": "Fourths",
    "thirds": "Thirds",
    "seconds": "Seconds",
    "unisons": "Unisons (repeated pitch)",
    "tritones": "Tritones",
    "octaves": "Octaves",
    "in_key_preferred": "In-key preferred intervals (thirds + fifths)",
    "in_key_thirds": "In-key thirds",
    "in_key_fifths": "In-key fifths",
    "rests": "Rests",
    "rests_after_tonic_or_fifth": "Rests after tonic or fifth",
}

STATISTICS: tuple[Statistic, ...] = (
    # The paper's Table 1, in its order.
    _rate("excessively_repeated", "Notes excessively repeated"),
    *(
        _mean(f"{_LAG}{k}", f"Mean autocorrelation – lag {k}", "autocorrelation_defined", "table1")
        for k in AUTOCORRELATION_LAGS
    ),
    _rate("not_in_key", "Notes not in key"),
    _rate("starts_with_tonic", "Compositions starting with tonic", "one"),
    _rate("leaps_resolved", "Leaps resolved", "leaps_resolved+leaps_doubled"),
    _rate("unique_max", "Compositions with unique max note", "one"),
    _rate("unique_min", "Compositions with unique min note", "one"),
    _rate("in_motif", "Notes in motif"),
    _rate("in_repeated_motif", "Notes in repeated motif"),
    # Rewards, per step.
    _mean("music_theory", "r_MT", "steps", "rewards"),
    *(_mean(f"reward/{n}", f"r_MT term: {n}", "steps", "rewards") for n in MUSIC_THEORY_RULES),
    _mean("log_prob", "log p under the Note RNN", "steps", "rewards"),
    _mean("kl", "KL(policy ‖ Note RNN) per step (nats)", "steps", "judge"),
    _mean("total_reward", "Env reward", "steps", "rewards"),
    # Intervals, mean count per composition.
    *(_mean(f"interval/{n}", label, "one", "intervals") for n, label in _INTERVAL_LABELS.items()),
    # Variety.
    _mean("pitch_class_entropy", "Pitch-class entropy (bits)", "has_notes", "variety"),
    _mean("pitch_range", "Pitch range (semitones)", "has_notes", "variety"),
    _mean("distinct_pitches", "Distinct pitches", "one", "variety"),
    Statistic("hold_share", "Hold tokens", "hold_tokens", "steps", True, "variety"),
    Statistic("rest_share", "Rest tokens", "rest_tokens", "steps", True, "variety"),
)
"""Every reported statistic; ``"one"`` as a denominator means per composition."""
