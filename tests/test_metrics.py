"""Evaluation metrics on hand-written compositions with hand-computed values, in several keys.

Melodies are note names (``C4`` = MIDI 60), ``hold`` (token 0) and ``rest`` (token 1). Each
statistic is checked in C major and in another key; a cross-check runs the env over the same
compositions and reads the statistics off its per-step reward breakdown.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from melody_env import MelodyCompositionEnv
from melody_env.evaluation.metrics import (
    INTERVAL_SIZES,
    STATISTICS,
    composition_columns,
    duplicate_rate,
    score_compositions,
    table_from_reward_terms,
)
from melody_env.evaluation.stats import (
    Estimate,
    bootstrap_ratios,
    format_mean_std,
    mean_std,
    summarize,
)
from melody_env.rewards.rules import MUSIC_THEORY_RULES
from tests.conftest import tokens


def score(melodies: list[str], key: str = "C major", **kwargs):
    """The statistics table of melodies of equal length."""
    return score_compositions(np.array([tokens(m) for m in melodies]), key, **kwargs)


def summary(melodies: list[str], key: str = "C major"):
    return summarize(score(melodies, key), n_bootstrap=0)


# --- Table 1 statistics -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "melodies", "expected"),
    [
        # The 6th and the 7th identical attack; a new pitch ends the run.
        ("C major", ["C4 C4 C4 C4 C4 C4 C4 D4"], [2]),
        # A third note-off in a row.
        ("C major", ["C4 rest rest rest D4 E4 F4 G4"], [1]),
        # A note held for six sixteenths is fine; its sixth hold (the seventh sixteenth) is not.
        ("G major", ["G4 hold hold hold hold hold hold A4", "G4 G4 G4 G4 G4 G4 A4 A4"], [1, 1]),
    ],
)
def test_excessively_repeated(key, melodies, expected):
    table = score(melodies, key)
    assert table["excessively_repeated"].tolist() == expected
    rate = summarize(table, n_bootstrap=0)["excessively_repeated"].value
    assert rate == pytest.approx(sum(expected) / (8 * len(melodies)))


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        ("C major", "C4 C#4 hold rest F#4 B5", 2),
        ("G major", "G4 F#4 F4 hold C3 rest", 1),  # F natural is out of G major
        ("F# major", "F#4 F4 C#5 C5 B4 A#4", 1),  # F is E#, in key; C natural is not
    ],
)
def test_not_in_key(key, melody, expected):
    table = score([melody], key)
    assert table["not_in_key"][0] == expected
    assert summary([melody], key)["not_in_key"].value == pytest.approx(expected / 6)


@pytest.mark.parametrize(
    ("key", "melodies", "expected"),
    [
        ("C major", ["C3 D4 E4", "D4 C4 E4", "hold C4 E4", "C5 rest C4"], [1, 0, 0, 1]),
        ("A minor", ["A5 B5 A5", "C4 A3 A3", "A3 hold hold"], [1, 0, 1]),
    ],
)
def test_starts_with_tonic_in_any_octave(key, melodies, expected):
    assert score(melodies, key)["starts_with_tonic"].tolist() == expected
    assert summary(melodies, key)["starts_with_tonic"].value == pytest.approx(np.mean(expected))


@pytest.mark.parametrize(
    ("key", "melodies", "resolved", "doubled"),
    [
        # C4 up to G4, D4 on the way, back to C4: resolved.
        # C4 up to G4, on up to D5 (doubled), straight down to C4 (too soon: cleared, not resolved).
        ("C major", ["C4 G4 D4 C4", "C4 G4 D5 C4"], [1, 0], [0, 1]),
        # G3 up to D4, down by steps to G3: resolved; holds and rests only count steps.
        ("G major", ["G3 D4 hold C4 rest G3", "G3 D4 A4 E5 hold rest"], [1, 0], [0, 2]),
    ],
)
def test_leaps_resolved(key, melodies, resolved, doubled):
    table = score(melodies, key)
    assert table["leaps_resolved"].tolist() == resolved
    assert table["leaps_doubled"].tolist() == doubled
    expected = sum(resolved) / (sum(resolved) + sum(doubled))
    assert summary(melodies, key)["leaps_resolved"].value == pytest.approx(expected)


def test_leaps_resolved_is_undefined_without_leaps():
    assert math.isnan(summary(["C4 D4 E4 F4"])["leaps_resolved"].value)


@pytest.mark.parametrize(
    ("key", "melodies", "unique_max", "unique_min"),
    [
        (
            "C major",
            ["C4 E4 C4 D4", "C4 hold G4 rest", "rest hold hold hold"],
            [1, 1, 0],
            [0, 1, 0],
        ),
        ("D minor", ["D4 F4 A4 F4 D4", "D4 A4 hold D5 A4"], [1, 1], [0, 1]),
    ],
)
def test_unique_extremes(key, melodies, unique_max, unique_min):
    table = score(melodies, key)
    assert table["unique_max"].tolist() == unique_max
    assert table["unique_min"].tolist() == unique_min


MOTIF_C = "C4 hold D4 hold E4 hold hold hold C4 hold hold hold hold hold hold hold"
MOTIF_F = "F4 hold G4 hold A4 hold hold hold F4 hold hold hold hold hold hold hold"


@pytest.mark.parametrize(("key", "melody"), [("C major", MOTIF_C), ("F major", MOTIF_F)])
def test_notes_in_motif(key, melody):
    # Windows ending at steps 7, 8 and 9 hold three pitches; from step 10 only two.
    table = score([melody], key)
    assert table["in_motif"][0] == 3
    assert table["in_repeated_motif"][0] == 0
    assert summary([melody], key)["in_motif"].value == pytest.approx(3 / 16)


@pytest.mark.parametrize(
    ("key", "bar"), [("C major", "C4 D4 E4 hold"), ("Bb major", "Bb3 C4 D4 hold")]
)
def test_notes_in_repeated_motif(key, bar):
    # Five bars of a 4-step figure: every window from step 15 on repeats one 4 or 8 steps earlier.
    melody = " ".join([bar] * 5)
    table = score([melody], key)
    assert table["in_repeated_motif"][0] == 5
    assert table["in_motif"][0] == 13
    assert summary([melody], key)["in_repeated_motif"].value == pytest.approx(5 / 20)


@pytest.mark.parametrize(("key", "shift"), [("C major", 0), ("G major", 7)])
def test_mean_autocorrelation_over_defined_lines(key, shift):
    # Onsets 60 62 60 62: rho = -3/4, 1/2, -1/4. A constant line is undefined (excluded).
    # Onsets 60 64 67: rho_1 = -1/222, rho_2 = -110/222, rho_3 = 0 (lag beyond the line).
    names = {0: ("C4", "D4", "E4", "G4"), 7: ("G4", "A4", "B4", "D5")}[shift]
    c, d, e, g = names
    melodies = [
        f"{c} hold {d} hold {c} hold {d} hold",
        f"{c} hold {c} hold {c} rest hold hold",
        f"{c} {e} {g} hold hold rest hold hold",
    ]
    stats = summary(melodies, key)
    assert stats["autocorrelation_lag1"].value == pytest.approx((-0.75 - 1 / 222) / 2)
    assert stats["autocorrelation_lag2"].value == pytest.approx((0.5 - 110 / 222) / 2)
    assert stats["autocorrelation_lag3"].value == pytest.approx((-0.25 + 0.0) / 2)
    assert score(melodies, key)["autocorrelation_defined"].tolist() == [1, 0, 1]


# --- Intervals ----------------------------------------------------------------------------------


def interval_counts(melody: str, key: str) -> dict[str, int]:
    table = score([melody], key)
    return {
        name.removeprefix("interval/"): int(v[0])
        for name, v in table.items()
        if name.startswith("interval/")
    }


def expected_intervals(**counts: int) -> dict[str, int]:
    names = [*INTERVAL_SIZES, "in_key_thirds", "in_key_fifths", "in_key_preferred", "rests"]
    return {name: counts.get(name, 0) for name in [*names, "rests_after_tonic_or_fifth"]}


@pytest.mark.parametrize(
    ("key", "melody", "expected"),
    [
        # C-E, E-G in-key thirds; G-C5 fourth; C5-B4 second; rest after B (not tonic/fifth);
        # B4-G4 a third outside the triad; (hold) G4-D4 fourth; D4-C#5 seventh; C#5-C3 more than
        # an octave; C3-F#3 tritone.
        (
            "C major",
            "C4 E4 G4 C5 B4 rest G4 hold D4 C#5 C3 F#3",
            expected_intervals(
                thirds=3, in_key_thirds=2, in_key_preferred=2, fourths=2, seconds=1, rests=1,
                sevenths=1, octave_jumps=1, tritones=1,
            ),
        ),
        # C-G and G-C in-key fifths; C4-C5 octave; C5-A4 minor third (A not in the triad); rest
        # after A; A4-F4 major third outside the triad; F4-C5 a plain fifth; C5-E4 minor sixth;
        # E4-C4 in-key third.
        (
            "C major",
            "C4 G4 C4 C5 A4 rest F4 C5 E4 C4",
            expected_intervals(
                fifths=3, in_key_fifths=2, octaves=1, thirds=3, in_key_thirds=1,
                in_key_preferred=3, sixths=1, rests=1,
            ),
        ),
        # A minor's triad A C E: A-C (minor third) and C-E in key; E-A fourth; rest after the
        # tonic; A-E fourth; (hold) E4-A3 in-key fifth; A3-E4 in-key fifth; E-E unison.
        (
            "A minor",
            "A3 C4 E4 A4 rest E4 hold A3 E4 E4",
            expected_intervals(
                thirds=2, in_key_thirds=2, fourths=2, fifths=2, in_key_fifths=2,
                in_key_preferred=4, rests=1, rests_after_tonic_or_fifth=1, unisons=1,
            ),
        ),
    ],
)  # fmt: skip
def test_interval_counts(key, melody, expected):
    assert interval_counts(melody, key) == expected


def test_interval_report_rows_are_means_per_composition():
    melodies = ["C4 E4 G4 C5", "C4 D4 hold rest"]  # thirds: 2 + 0; fourths 1 + 0; seconds 0 + 1
    stats = summary(melodies)
    assert stats["interval/thirds"].value == pytest.approx(1.0)
    assert stats["interval/in_key_preferred"].value == pytest.approx(1.0)
    assert stats["interval/seconds"].value == pytest.approx(0.5)
    assert stats["interval/rests"].value == pytest.approx(0.5)


# --- Variety and the rest -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "melody", "entropy", "pitch_range", "distinct"),
    [
        ("C major", "C4 E4 C4 D4 hold rest hold hold", 1.5, 4, 3),
        ("E minor", "E4 E5 B4 G4 hold hold rest rest", 1.5, 12, 4),
        ("E minor", "E4 F#4 B4 G4 hold hold rest rest", 2.0, 7, 4),
        ("C major", "rest hold hold hold hold hold hold hold", 0.0, 0, 0),
    ],
)
def test_variety(key, melody, entropy, pitch_range, distinct):
    table = score([melody], key)
    assert table["pitch_class_entropy"][0] == pytest.approx(entropy)
    assert table["pitch_range"][0] == pitch_range
    assert table["distinct_pitches"][0] == distinct


def test_hold_and_rest_shares():
    stats = summary(["C4 hold hold rest", "D4 E4 hold rest"])
    assert stats["hold_share"].value == pytest.approx(3 / 8)
    assert stats["rest_share"].value == pytest.approx(2 / 8)
    # Pitch range and entropy average over compositions with notes only.
    stats = summary(["C4 E4 hold rest", "rest hold hold hold"])
    assert stats["pitch_range"].value == pytest.approx(4.0)
    assert stats["distinct_pitches"].value == pytest.approx(1.0)


def test_duplicate_rate():
    compositions = np.array([tokens("C4 D4"), tokens("C4 D4"), tokens("E4 D4"), tokens("C4 D4")])
    assert duplicate_rate(compositions) == 0.5
    assert duplicate_rate(compositions[2:]) == 0.0


def test_composition_columns_match_the_replay():
    melodies = np.array([tokens("C4 E4 G4 hold"), tokens("rest D4 D4 D5")])
    replay = score_compositions(melodies)
    for name, column in composition_columns(melodies).items():
        np.testing.assert_array_equal(replay[name], column)


def test_reward_columns_sum_the_rules():
    table = score(["C4 E4 G4 E4 C4 hold hold hold", "D4 F#4 A4 C#5 hold rest G4 G4"], "D major")
    rules = sum(table[f"reward/{name}"] for name in MUSIC_THEORY_RULES)
    np.testing.assert_allclose(table["music_theory"], rules)
    assert np.isnan(table["log_prob"]).all()  # no reward RNN given


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match="outside the token range"):
        score_compositions(np.array([[2, 40]]))
    with pytest.raises(ValueError, match="L >= 1"):
        score_compositions(np.zeros((2, 0), dtype=int))
    with pytest.raises(ValueError, match="keys"):
        score_compositions(np.array([[2, 3]]), ["C major", "D major"])
    with pytest.raises(ValueError, match="primer"):
        score_compositions(np.array([[2, 3]]), primers=[[]])


# --- Cross-check against the env's per-step breakdown -------------------------------------------


def env_reward_terms(compositions, primers, key, reward_rnn):
    """Run the single env over the compositions; stack ``info`` over the steps."""
    env = MelodyCompositionEnv(key=key, reward_rnn=reward_rnn)
    rows = []
    for composition, primer in zip(compositions, primers, strict=True):
        env.reset(seed=0, options={"primer": primer})
        steps = [env.step(int(token))[-1] for token in composition]
        row = {name: [info["reward_terms"][name] for info in steps] for name in MUSIC_THEORY_RULES}
        row["music_theory"] = [info["music_theory"] for info in steps]
        row["log_prob"] = [info["log_prob"] for info in steps]
        rows.append(row)
    return {name: np.array([row[name] for row in rows]) for name in rows[0]}


@pytest.mark.parametrize("key", ["C major", "D minor"])
def test_statistics_from_compositions_agree_with_the_env_breakdown(tiny_rnn, key):
    rng = np.random.default_rng(3)
    # Random melodies plus hand-written ones that trigger the rarer rules (repeats, motifs, leaps).
    random_melodies = rng.integers(0, 38, size=(12, 32))
    scale_like = rng.choice(tokens("D4 E4 F4 G4 A4 C5 D5 hold hold rest"), size=(12, 32))
    written = [
        tokens(" ".join(["D4 F4 A4 hold"] * 8)),
        tokens("C4 C4 C4 C4 C4 C4 C4 C4 " + "D4 A4 E5 rest " * 6),
        tokens("D4 hold hold hold hold hold hold hold rest rest rest " + "F4 " * 21),
    ]
    compositions = np.concatenate([random_melodies, scale_like, np.array(written)])
    primers = [rng.integers(0, 38, size=int(rng.integers(1, 4))) for _ in compositions]

    table = score_compositions(compositions, key, primers, reward_rnn=tiny_rnn)
    from_env = table_from_reward_terms(env_reward_terms(compositions, primers, key, tiny_rnn))

    assert table["excessively_repeated"].sum() > 0 and table["in_repeated_motif"].sum() > 0
    assert table["leaps_resolved"].sum() > 0 and table["leaps_doubled"].sum() > 0
    for name in (
        "excessively_repeated",
        "not_in_key",
        "in_motif",
        "in_repeated_motif",
        "leaps_resolved",
        "leaps_doubled",
        "starts_with_tonic",
    ):
        np.testing.assert_array_equal(table[name], from_env[name], err_msg=name)
    np.testing.assert_array_equal(
        table["unique_max"] + table["unique_min"], from_env["unique_extremes"]
    )
    for name in [*(f"reward/{rule}" for rule in MUSIC_THEORY_RULES), "music_theory", "log_prob"]:
        np.testing.assert_allclose(table[name], from_env[name], rtol=1e-5, atol=1e-4, err_msg=name)


# --- Statistics helpers -------------------------------------------------------------------------


def test_every_statistic_names_existing_columns():
    table = score(["C4 E4 G4 hold"])
    table["kl"] = np.zeros(1)
    for statistic in STATISTICS:
        for column in [statistic.numerator, *statistic.denominator.split("+")]:
            assert column == "one" or column in table, (statistic.name, column)


def test_bootstrap_interval_has_the_binomial_width():
    # 8 steps per composition, each out of key with probability 0.3: the rate's standard error
    # is sqrt(0.3 * 0.7 / (8 n)), so the 95% interval is about 2 x 1.96 of it wide.
    rng = np.random.default_rng(0)
    for n in (200, 5000):
        table = {"steps": np.full(n, 8), "not_in_key": rng.binomial(8, 0.3, n)}
        estimate = summarize(table, n_bootstrap=400)["not_in_key"]
        assert estimate.low < estimate.value < estimate.high
        width = 2 * 1.96 * np.sqrt(0.21 / (8 * n))
        assert 0.8 * width < estimate.high - estimate.low < 1.2 * width
    low, high = bootstrap_ratios(np.ones((10, 1)), np.ones((10, 1)), n_bootstrap=0)
    assert np.isnan(low).all() and np.isnan(high).all()


def test_bootstrap_is_reproducible():
    table = score(["C4 C#4 D4 hold", "C4 E4 F#4 G4", "A4 Bb4 hold rest"])
    first = summarize(table, n_bootstrap=100, seed=1)
    second = summarize(table, n_bootstrap=100, seed=1)
    assert {k: v.to_dict() for k, v in first.items()} == {k: v.to_dict() for k, v in second.items()}


def test_mean_std_across_seeds():
    runs = [{"a": Estimate(0.1), "b": 2.0}, {"a": Estimate(0.3), "b": 4.0}]
    result = mean_std(runs)
    assert result["a"].value == pytest.approx(0.2)
    assert result["a"].high - result["a"].value == pytest.approx(np.std([0.1, 0.3], ddof=1))
    assert result["b"].value == pytest.approx(3.0)
    assert format_mean_std(result["a"], percent=True) == "20.00 ± 14.14%"
    assert mean_std([{"a": Estimate(0.5)}])["a"] == Estimate(0.5, 0.5, 0.5)
