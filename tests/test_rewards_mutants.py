"""Behaviour tests of melody_env.rewards written against mutmut's survivors.

Each test pins behaviour that a surviving mutant changed (docs/mutation_testing.md): hand-computed
rewards at the boundaries of each rule, the tables the rules are read from (rebuilt here, since
the module-level copies are built at import, before any mutant is switched on), the contexts a
user's reward term sees, and the errors' messages.

Tokens: 0 is hold, 1 is rest, ``2 + p - 48`` is MIDI pitch ``p`` (C4 = 60 is token 14).
"""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.music.keys import Key
from melody_env.rewards import composition, rule_engine, rules
from melody_env.rewards.composition import RewardFunction
from melody_env.rewards.context import KeyArrays, RewardContext, SingleRewardContext

C4, D4, E4 = 14, 16, 18


def token(pitch: int) -> int:
    return pitch - 46


def hand_context(history, action, key="C major", length=8, **given) -> RewardContext:
    """A context of one composition built by hand: the derived facts come from ``history``."""
    history = np.array([history], dtype=np.int64).reshape(1, -1)
    previous = history[:, -1] if history.shape[1] else np.array([0])
    return RewardContext(
        history,
        np.array([action]),
        history.shape[1],
        length,
        KeyArrays.from_keys([Key.from_name(key)]),
        previous,
        np.array([-1.5]),
        np.array([0], dtype=np.int8),
        **given,
    )


# --- The tables the rules read, rebuilt (the import-time copies see no mutant).

# Base reward of each interval class (x 5): the spec's table, by classify_interval's code.
INTERVAL_TABLE = {
    -9: 0.0,  # no previous note
    -6: 0.5,  # in-key fifth (tonic to dominant)
    -5: 0.75,  # in-key third
    -4: 1.5,  # hold after the tonic or fifth
    -3: 0.375,  # hold
    -2: 0.75,  # rest after the tonic or fifth
    -1: 0.25,  # rest
    0: 0.0,
    1: 0.0,
    2: 0.4,
    3: 0.0,
    4: 0.45,
    5: 0.35,
    6: 0.0,
    7: 0.1,
    8: 0.0,
    9: 0.25,
    10: 0.0,
    11: -1.5,
    12: 0.0,  # an octave is not punished
    13: -5.0,  # beyond an octave
    35: -5.0,  # the widest interval
}


def test_interval_table_rebuilt_matches_the_spec():
    table = rules._interval_rewards()
    assert table.shape == (35 - (-9) + 1,)  # NO_PREVIOUS_NOTE .. MAX_PITCH - MIN_PITCH
    for code, expected in INTERVAL_TABLE.items():
        assert table[code + 9] == pytest.approx(expected), code
        assert rules.preferred_intervals_reward(code) == pytest.approx(expected), code
    assert table[-8 + 9] == table[-7 + 9] == 0.0
    assert (table[13 + 9 :] == -5.0).all()


def test_motif_tables_rebuilt():
    notes = np.arange(9)
    motif = rules._motif_rewards(notes, rules.MOTIF_REWARD, rules.MOTIF_BONUS_PER_EXTRA_NOTE)
    np.testing.assert_allclose(motif, [0, 0, 0, 3.0, 3.3, 3.6, 3.9, 4.2, 4.5])
    repeated = rules._motif_rewards(
        notes, rules.REPEATED_MOTIF_REWARD, rules.REPEATED_MOTIF_BONUS_PER_EXTRA_NOTE
    )
    np.testing.assert_allclose(repeated, [0, 0, 0, 4, 5, 6, 7, 8, 9])


# --- Each rule function on its boundaries (a Python float, JIT or not).


@pytest.mark.parametrize(
    ("step", "token", "is_tonic", "expected"),
    [
        # length 8: the final tonic is due at step 4 (8 - FINAL_TONIC_STEPS).
        (0, C4, True, 3.0),
        (0, C4, False, 0.0),
        (1, C4, True, 0.0),
        (3, C4, True, 0.0),
        (3, 0, False, 0.0),  # a hold before the ending earns nothing
        (4, C4, True, 3.0),
        (4, 0, False, 0.0),
        (5, 0, False, 3.0),  # a hold after the final tonic
        (5, 1, False, 0.0),  # a rest does not hold it
        (5, C4, True, 0.0),  # nor does the tonic struck again
        (6, 1, False, 3.0),
        (6, 0, False, 3.0),
        (7, 1, False, 3.0),
        (7, 2, False, 0.0),  # a note on the last steps
        (7, C4, True, 0.0),
    ],
)
def test_tonic_reward_at_each_step_of_the_ending(step, token, is_tonic, expected):
    value = rules.tonic_reward(step, 8, token, is_tonic)
    assert value == expected
    assert type(value) is float


@pytest.mark.parametrize(
    ("rho", "expected"),
    [
        ([0.0, 0.0, 0.0], 0.0),
        ([0.15, -0.15, 0.15], 0.0),  # at the threshold: not penalised
        ([0.16, 0.0, 0.0], -0.48),
        ([-0.5, 0.0, 0.0], -1.5),  # |rho|: a negative correlation counts too
        ([0.2, -0.3, 0.1], -1.5),  # lags over the threshold add up
        ([0.1, 0.1, 0.9], -2.7),  # the third lag counts
    ],
)
def test_autocorrelation_reward(rho, expected):
    assert rules.autocorrelation_reward(np.array(rho)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("is_last", "high", "low", "expected"),
    [
        (False, True, True, 0.0),
        (True, False, False, 0.0),
        (True, True, False, 3.0),
        (True, False, True, 3.0),
        (True, True, True, 6.0),
    ],
)
def test_unique_extremes_reward(is_last, high, low, expected):
    assert rules.unique_extremes_reward(is_last, high, low) == expected


def test_the_small_rules_on_each_input():
    assert (rules.key_reward(True), rules.key_reward(False)) == (0.0, -1.0)
    assert (rules.repeated_notes_reward(True), rules.repeated_notes_reward(False)) == (-100.0, 0)
    assert [rules.leap_resolution_reward(outcome) for outcome in (-1, 0, 1)] == [-5.0, 0.0, 5.0]
    assert [rules.motif_reward(n) for n in (2, 3, 5, 8)] == pytest.approx([0, 3, 3.6, 4.5])
    assert rules.repeated_motif_reward(False, 5) == 0.0
    assert [rules.repeated_motif_reward(True, n) for n in (2, 3, 8)] == [0.0, 4.0, 9.0]


def test_rule_term_reads_its_row_of_any_context_with_rule_values():
    term = rules.RuleTerm(2, "repeated_notes")
    assert (term.index, term.name) == (2, "repeated_notes")
    assert repr(term) == "RuleTerm(2, 'repeated_notes')"

    class Values:
        rule_values = [10.0, 11.0, 12.0]

    assert term(Values()) == 12.0
    assert list(rules.MUSIC_THEORY_RULES) == list(rules.RULE_NAMES)
    assert [t.index for t in rules.MUSIC_THEORY_RULES.values()] == list(range(9))


# --- The scale toy mode: its table, rebuilt.


def test_scale_pitches_are_two_octaves_from_the_lowest_tonic():
    c_major = [48, 50, 52, 53, 55, 57, 59, 60, 62, 64, 65, 67, 69, 71, 72]
    assert composition._scale_pitches(Key(0, "major")).tolist() == c_major
    d_minor = [50, 52, 53, 55, 57, 58, 60, 62, 64, 65, 67, 69, 70, 72, 74]
    assert composition._scale_pitches(Key(2, "minor")).tolist() == d_minor
    assert composition._scale_pitches(Key(11, "major"))[0] == 59  # B3: 48 + (11 - 48) % 12


SCALE_CASES = [
    # key index (mode * 12 + tonic), previous token, token, reward
    (0, C4, 0, 0.1),  # hold
    (0, C4, 1, 0.0),  # rest
    (0, C4, D4, 0.86),  # a step up (0.05), in the scale (0.01), the next degree (0.8)
    (0, C4, token(61), 0.05),  # a step up out of the scale
    (0, C4, token(63), 0.0),  # three semitones up is no step, and out of the scale
    (0, C4, E4, 0.01),  # in the scale, a leap
    (0, C4, C4, 0.01),  # the same pitch is no step up
    (0, D4, C4, 0.01),  # down
    (0, token(71), token(72), 0.86),  # B4 -> C5, a semitone step to the next degree
    (0, token(72), token(48), 0.81),  # the top of the scale wraps to the bottom
    (0, 0, D4, 0.01),  # after a hold: no step, no degree
    (0, 1, D4, 0.01),  # after a rest
    (0, token(61), D4, 0.06),  # after a note outside the scale: no next degree
    (0, token(61), token(50), 0.01),  # ... not even the scale's second degree
    (0, 2, 4, 0.86),  # C3 -> D3: the lowest note counts as a note
    (14, token(69), token(70), 0.86),  # D minor: A4 -> Bb4
    (14, token(69), token(71), 0.05),  # D minor: B natural is not in the scale
    (14, token(50), token(52), 0.86),  # D minor's lowest degree to its second
    (7, token(62), token(64), 0.86),  # G major: D4 -> E4, a whole tone to the next degree
    (7, token(65), token(66), 0.06),  # G major: F4 -> F#4, a step up from outside the scale
]


@pytest.mark.parametrize(("key", "previous", "action", "expected"), SCALE_CASES)
def test_scale_rewards(key, previous, action, expected):
    got = composition.scale_rewards(np.array([key]), np.array([previous]), np.array([action]))
    assert got.tolist() == pytest.approx([expected])
    table = composition._scale_table()
    assert table.shape == (24 * 38 * 38,)
    assert table[(key * 38 + previous) * 38 + action] == pytest.approx(expected)


def test_scale_rewards_of_a_batch_are_each_compositions_own():
    cases = np.array(SCALE_CASES)
    key, previous, action = cases[:, :3].T.astype(np.int64)
    expected = cases[:, 3]
    np.testing.assert_allclose(composition.scale_rewards(key, previous, action), expected)


# --- The contexts: what a term sees, built by the engine or by hand.


def single_context(melody, key="D major", length=8, log_prob=-0.25, previous=5):
    """The single env's context after ``melody``, stepped through the rule engine."""
    engine = rule_engine.RuleEngine(1, length)
    engine.reset(np.array([Key.from_name(key).index]))
    for step, action in enumerate(melody):
        values = engine.advance(step, action)
    return SingleRewardContext(
        list(melody),
        length,
        Key.from_name(key),
        previous,
        log_prob,
        engine.facts_of(0),
        values[:, 0].tolist(),
    )


def test_a_single_context_as_a_batch_equals_a_context_built_from_its_history():
    melody = [token(62), token(69), 0, token(74), token(73)]  # D4 A4 hold D5 C#5, in D major
    single = single_context(melody)
    assert (single.step, single.length, single.action) == (4, 8, token(73))
    assert single.history == melody[:-1]
    assert not single.is_last_step
    batch = single.batch()
    assert batch is single.batch()  # made once
    expected = RewardContext(
        np.array([melody[:-1]]),
        np.array([melody[-1]]),
        4,
        8,
        KeyArrays.from_keys([Key.from_name("D major")]),
        np.array([5]),
        np.array([-0.25]),
        np.array([single.leap_outcome], dtype=np.int8),
    )
    assert (batch.step, batch.length, batch.batch_size) == (4, 8, 1)
    assert batch.keys.index.tolist() == [2]
    for name in ("history", "action", "previous_token", "log_prob", "leap_outcome", "sequence"):
        np.testing.assert_array_equal(getattr(batch, name), getattr(expected, name), name)
    for name in ("pitch", "in_key", "interval", "is_repeating", "motif_notes"):
        got, want = getattr(batch, name), getattr(expected, name)
        assert got.tolist() == want.tolist(), name
        assert got.tolist() == [getattr(single, name)], name
    assert batch.leap_outcome.dtype == np.int8
    np.testing.assert_array_equal(batch.rule_values, expected.rule_values)
    assert batch.rule_values.shape == (9, 1)
    np.testing.assert_array_equal(batch.music_theory, expected.music_theory)
    assert batch.music_theory.tolist() == [single.music_theory]
    assert single.rule_values == expected.rule_values[:, 0].tolist()


def test_single_context_last_step():
    single = single_context([token(62)] * 3, length=3)
    assert single.is_last_step
    assert single.batch().keys.index.tolist() == [2]


def test_a_single_context_at_the_first_step_has_an_empty_integer_history():
    batch = single_context([token(62)]).batch()
    assert batch.history.shape == (1, 0)
    assert batch.history.dtype == np.int64
    assert batch.sequence.tolist() == [[token(62)]]
    assert batch.sequence.dtype == np.int64


def test_key_arrays_of_mixed_keys():
    keys = [Key.from_name(name) for name in ("C major", "D minor", "C major", "B major")]
    arrays = KeyArrays.from_keys(keys)
    assert arrays.index.tolist() == [0, 14, 0, 11]
    assert arrays.tonic.tolist() == [0, 2, 0, 11]
    assert arrays.mediant.tolist() == [4, 5, 4, 3]
    assert arrays.dominant.tolist() == [7, 9, 7, 6]
    assert arrays.scale_mask.shape == (4, 12)
    assert arrays.scale_mask[1].nonzero()[0].tolist() == [0, 2, 4, 5, 7, 9, 10]  # D minor
    same = KeyArrays.from_keys([keys[1]] * 3)
    assert same.index.tolist() == [14] * 3
    assert same.dominant.tolist() == [9] * 3


def test_a_context_by_hand_without_a_key_index_is_refused():
    keys = KeyArrays.from_keys([Key()])
    ctx = hand_context([C4], D4)
    ctx.keys = KeyArrays(keys.tonic, keys.mediant, keys.dominant, keys.scale_mask)
    with pytest.raises(ValueError, match=r"^a RewardContext built by hand needs KeyArrays with an"):
        ctx.rule_values  # noqa: B018


@pytest.mark.parametrize("steps", [0, 9])
def test_replay_needs_one_to_length_tokens(steps):
    with pytest.raises(ValueError, match=f"^a sequence of 1 to 8 tokens is needed, got {steps}$"):
        rule_engine.replay(np.zeros((1, steps), dtype=np.int64), np.array([0]), 8)


def test_replay_of_one_token():
    values = rule_engine.replay(np.array([[C4], [15]]), np.array([0, 0]), 8)
    assert values[:9, 0].tolist() == [0.0, 3.0] + [0.0] * 7  # the opening tonic
    assert values[0, 1] == -1.0  # C#4 is out of C major
    assert values[9].tolist() == [3.0, -1.0]


def test_replay_gives_the_rules_at_the_last_token():
    # C4 D4 E4 in C major, length 3: E4 is in the key, a step, and the last step.
    values = rule_engine.replay([[C4, D4, E4]], [0], 3)
    assert values.shape == (10, 1)
    by_name = dict(zip(rules.RULE_NAMES, values[:9, 0].tolist(), strict=True))
    assert by_name["key"] == 0.0
    assert by_name["preferred_intervals"] == pytest.approx(0.4)  # a major second
    assert by_name["unique_extremes"] == 6.0  # C4 and E4 once each
    assert values[9, 0] == pytest.approx(sum(by_name.values()))


# --- A user's terms, on a batch and on a single composition.


def test_a_user_term_on_a_batch_is_weighted_and_kept_as_floats():
    reward = RewardFunction(
        "music_theory_only",
        reward_scaler=1.0,
        terms={"bonus": lambda ctx: ctx.action - np.array([14, 12])},  # ints: 2 and 3
        weights={"bonus": 0.5},
    )
    ctx = RewardContext(
        np.array([[C4], [C4]]),
        np.array([D4, 15]),  # D4 (a step in C major), C#4 (out of the key)
        1,
        8,
        KeyArrays.from_keys([Key(), Key()]),
        np.array([C4, C4]),
        np.array([-1.0, -2.0]),
        np.array([0, 0], dtype=np.int8),
    )
    breakdown = reward(ctx)
    assert breakdown.terms["bonus"].dtype == np.float64
    assert breakdown.terms["bonus"].tolist() == [2.0, 3.0]
    np.testing.assert_allclose(breakdown.total, breakdown.music_theory + np.array([1.0, 1.5]))
    assert breakdown.log_prob.tolist() == [-1.0, -2.0]


def test_a_user_term_of_one_number_is_broadcast_to_the_batch():
    reward = RewardFunction("music_theory_only", terms={"flat": lambda ctx: 7})
    assert reward(hand_context([C4], D4)).terms["flat"].tolist() == [7.0]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("x", r"^reward term 'bad' returned str 'x'; it must return one number or an array of "),
        (None, r"^reward term 'bad' returned NoneType None; it must return one number or an"),
        (np.array([np.nan]), r"^reward term 'bad' returned a non-finite value: \[nan\]$"),
        (np.zeros(2), r"^reward term 'bad' returned shape \(2,\); it must return one number"),
    ],
)
def test_a_user_term_returning_a_bad_value_is_named(returned, message):
    reward = RewardFunction(terms={"bad": lambda ctx: returned})
    with pytest.raises(ValueError, match=message):
        reward(hand_context([C4], D4))


def test_a_user_term_sees_a_batch_of_one_in_a_single_context():
    seen = []

    def term(ctx):
        seen.append(ctx)
        return ctx.pitch.astype(float)

    reward = RewardFunction("music_theory_only", terms={"pitch": term})
    single = single_context([token(62), token(64)])
    breakdown = reward(single)
    assert breakdown.terms["pitch"] == 64.0
    assert type(breakdown.terms["pitch"]) is float
    assert seen == [single.batch()]
    two = RewardFunction(terms={"two": lambda ctx: np.zeros(2)})
    with pytest.raises(ValueError, match=r"^reward term 'two' returned shape \(2,\); it must"):
        two(single)


def test_a_context_keeps_log_probs_as_float64_and_computes_its_line_on_demand():
    melody = [C4, D4, E4, 0, C4, D4, E4, 0]
    ctx = RewardContext(
        np.array([melody]), np.array([C4]), 8, 12, KeyArrays.from_keys([Key()]), np.array([0]),
        np.array([-0.5], dtype=np.float32), np.array([0], dtype=np.int8),
    )  # fmt: skip
    assert ctx.log_prob.dtype == np.float64
    line = ctx.line_sums  # C4 D4 E4 C4 D4 E4 C4: the holds are no pitches
    assert line.count.tolist() == [7]
    assert line.total.tolist() == [3 * 60 + 2 * 62 + 2 * 64]
    assert line.total_squares.tolist() == [3 * 3600 + 2 * 3844 + 2 * 4096]
    assert ctx.line_sums is line  # computed once
    codes = ctx.window_codes  # windows of 8 of the 9 tokens: 2, the second repeats none
    assert codes.shape == (1, 2)
    assert codes[0, 0] != codes[0, 1]
    again = RewardContext(
        np.array([melody + melody[:7]]), np.array([0]), 15, 16, ctx.keys, np.array([E4]),
        np.array([0.0]), np.array([0], dtype=np.int8),
    )  # fmt: skip
    assert again.window_codes[0, -1] == again.window_codes[0, 0]  # the melody again, whole


def test_a_context_whose_rule_values_miss_a_rule_is_refused():
    ctx = hand_context([C4], D4, rule_values=np.zeros((8, 1)), music_theory=np.zeros(1))
    with pytest.raises(ValueError, match="zip"):
        RewardFunction()(ctx)


def test_the_default_reward_is_the_papers():
    reward = RewardFunction()
    assert (reward.mode, reward.reward_scaler) == ("music_theory_all", 2.0)
    assert reward.weights == {**dict.fromkeys(rules.RULE_NAMES, 2.0), "log_prob": 1.0}


def test_a_reward_keeps_its_mode_and_scaler_and_weighs_extra_terms_one():
    reward = RewardFunction("key_and_tonic", 0.5, terms={"extra": len}, weights={"tonic": 0.0})
    assert (reward.mode, reward.reward_scaler) == ("key_and_tonic", 0.5)
    assert reward.weights == {"key": 0.5, "extra": 1.0}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": 3}, r"^reward_mode must be a name, one of \['key', 'key_and_tonic', .*, got 3$"),
        ({"mode": "loud"}, r"^unknown reward_mode 'loud'; choose one of \['key', "),
        ({"reward_scaler": "2"}, r"^reward_scaler must be a finite number, got '2'$"),
        ({"reward_scaler": True}, r"^reward_scaler must be a finite number, got True$"),
        ({"reward_scaler": np.inf}, r"^reward_scaler must be a finite number, got inf$"),
        ({"terms": [len]}, r"^reward_terms must be a dict of term name -> callable, got \["),
        ({"weights": "key"}, r"^reward_weights must be a dict of term name -> weight, got 'key'$"),
        ({"terms": {1: len}}, r"^reward term names must be strings, got 1$"),
        ({"terms": {"x": 1.0}}, r"^reward term 'x' must be callable, got 1.0$"),
        ({"terms": {"key": len}}, r"^reward term 'key' would shadow a built-in term of that name$"),
        ({"weights": {"keys": 1.0}}, r"^unknown reward term 'keys' in reward_weights; known terms"),
        ({"weights": {"key": "1"}}, r"^reward weight of 'key' must be a finite number, got '1'$"),
        (
            {"weights": {"key": np.nan}},
            r"^reward weight of 'key' must be a finite number, got nan$",
        ),
    ],
)
def test_a_bad_reward_configuration_is_named(arguments, message):
    with pytest.raises(ValueError, match=message):
        RewardFunction(**arguments)


def test_a_scale_that_is_not_a_power_of_two_sums_the_weighted_rules_in_order():
    # With s = 3, s * r_MT and 0 + s * v1 + ... + s * v9 differ in the last bit here: the sum
    # in term order is the one the reward promises (only a power of two may be factored out).
    ctx = hand_context([24], 20, length=16)  # A4 then F4 in C major
    values = ctx.rule_values[:, 0].tolist()
    in_order = 0.0
    for value in values:
        in_order = in_order + 3.0 * value
    assert in_order != 3.0 * ctx.music_theory[0]  # the case tells the two sums apart
    breakdown = RewardFunction("music_theory_only", reward_scaler=3.0)(ctx)
    assert breakdown.total[0] == in_order
    powers = RewardFunction("music_theory_only", reward_scaler=4.0)(ctx)
    assert powers.total[0] == 4.0 * ctx.music_theory[0]


def test_rule_engine_facts_have_their_documented_types():
    engine = rule_engine.RuleEngine(3, 4)
    assert (engine.batch_size, engine.length) == (3, 4)
    engine.advance(0, np.array([C4, 15, 0]))
    assert engine.pitch.dtype == engine.interval.dtype == engine.motif_notes.dtype == np.int64
    assert engine.in_key.dtype == engine.is_repeating.dtype == np.bool_
    assert engine.leap_outcome.dtype == np.int8
    assert engine.pitch.tolist() == [60, 61, -1]
    assert engine.in_key.tolist() == [True, False, True]
    facts = engine.facts_of(1)
    assert facts == (61, False, -9, False, 0, 0)
    assert [type(fact) for fact in facts] == [int, bool, int, bool, int, int]


def test_rule_engine_refuses_a_token_out_of_range_by_name():
    engine = rule_engine.RuleEngine(1, 4)
    with pytest.raises(IndexError, match=r"^a token outside 0\.\.37 was placed$"):
        engine.advance(0, 38)


@pytest.mark.parametrize(
    ("melody", "expected"),
    [
        ([C4, C4, 0, E4], 3.0),  # E4 the unique high after a hold; C4 twice is no unique low
        ([C4, 1, 0, E4], 6.0),  # holds and rests are skipped, not the end of the line
        ([E4, 0, C4, E4], 3.0),  # C4 the unique low after a hold
        ([0, 1, 0, 1], 0.0),  # no notes, no extremes
    ],
)
def test_unique_extremes_look_past_holds_and_rests(melody, expected):
    values = rule_engine.replay([melody], [0], len(melody))
    assert values[rules.RULE_NAMES.index("unique_extremes"), 0] == expected
