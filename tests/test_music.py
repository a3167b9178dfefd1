"""The token encoding, keys, and the batched theory detectors."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.music import theory
from melody_env.music.encoding import (
    NUM_CLASSES,
    fold_pitch,
    from_one_hot,
    pitch_to_token,
    to_one_hot,
    token_from_name,
    token_name,
    token_to_pitch,
    validate_tokens,
)
from melody_env.music.keys import KEY_NAMES, Key
from melody_env.rewards import rule_engine
from tests.conftest import tokens


def test_token_pitch_round_trip():
    all_tokens = np.arange(2, NUM_CLASSES)
    assert (pitch_to_token(token_to_pitch(all_tokens)) == all_tokens).all()
    assert token_to_pitch(np.array([0, 1])).tolist() == [-1, -1]
    assert (from_one_hot(to_one_hot(np.arange(NUM_CLASSES))) == np.arange(NUM_CLASSES)).all()


@pytest.mark.parametrize(
    ("token", "name"), [(0, "hold"), (1, "rest"), (2, "C3"), (14, "C4"), (37, "B5"), (15, "C#4")]
)
def test_names(token, name):
    assert token_name(token) == name
    assert token_from_name(name) == token


def test_flat_names():
    assert token_from_name("Bb3") == token_from_name("A#3")


@pytest.mark.parametrize("bad", [[38], [-1], [1.5], ["C4"], [True]])
def test_validate_tokens_names_the_bad_value(bad):
    with pytest.raises(ValueError, match="token"):
        validate_tokens(bad)


def test_pitch_out_of_range_and_fold():
    with pytest.raises(ValueError, match="84"):
        pitch_to_token(84)
    assert fold_pitch(np.arange(0, 128)).min() >= 48
    assert fold_pitch(np.arange(0, 128)).max() <= 83
    assert (fold_pitch(np.arange(0, 128)) % 12 == np.arange(0, 128) % 12).all()


def test_all_24_keys_parse_and_have_seven_notes():
    assert len(KEY_NAMES) == 24
    for name in KEY_NAMES:
        key = Key.from_name(name)
        assert key.name == name
        assert len(key.scale) == 7 and key.tonic in key.scale and key.dominant in key.scale
    assert Key.from_name("a MINOR") == Key(9, "minor")
    assert Key.from_name("Eb major") == Key(3, "major")


@pytest.mark.parametrize("bad", ["H major", "C dorian", "", "C", "major"])
def test_unknown_key_lists_the_allowed_ones(bad):
    with pytest.raises(ValueError, match="C major"):
        Key.from_name(bad)


def test_detectors_are_batched():
    """One call on a batch equals one call per row (the vector env relies on it)."""
    rows = [
        tokens("C4 D4 E4 C4 hold G4 rest hold"),
        tokens("hold hold rest A3 A3 A3 A3 A3"),
        tokens("B5 C3 hold hold D5 E5 E5 rest"),
    ]
    batch = np.array(rows)
    history, action = batch[:, :-1], batch[:, -1]
    keys = [Key.from_name(name) for name in ("C major", "A minor", "F# major")]
    tonic = np.array([k.tonic for k in keys])
    mediant = np.array([k.mediant for k in keys])
    dominant = np.array([k.dominant for k in keys])
    together = theory.classify_interval(history, action, tonic, mediant, dominant)
    for row in range(3):
        alone = theory.classify_interval(
            history[row : row + 1],
            action[row : row + 1],
            tonic[row : row + 1],
            mediant[row : row + 1],
            dominant[row : row + 1],
        )
        assert together[row] == alone[0]
        assert (
            theory.is_excessive_repetition(history, action)[row]
            == theory.is_excessive_repetition(history[row : row + 1], action[row : row + 1])[0]
        )
        np.testing.assert_allclose(
            theory.onset_autocorrelation(batch)[row],
            theory.onset_autocorrelation(batch[row : row + 1])[0],
        )


def test_autocorrelation_of_constant_or_short_lines_is_zero():
    assert theory.onset_autocorrelation(np.array([tokens("C4 C4 C4 C4")])).tolist() == [[0, 0, 0]]
    assert theory.onset_autocorrelation(np.array([tokens("C4 hold rest")])).tolist() == [[0, 0, 0]]
    assert theory.onset_autocorrelation(np.zeros((1, 0), dtype=int)).tolist() == [[0, 0, 0]]


def test_autocorrelation_is_the_exact_ratio_rounded_once():
    """rho_k comes from integer sums: the incremental sums equal the whole-line ones, and a line
    with a known rational rho gives its correctly rounded value (here rho_1 = -13/44)."""
    from fractions import Fraction

    line = tokens("C4 E4 D4 C4")  # 60 64 62 60: mean 61.5, centred -1.5 2.5 0.5 -1.5
    centred = [Fraction(-3, 2), Fraction(5, 2), Fraction(1, 2), Fraction(-3, 2)]
    products = sum(a * b for a, b in zip(centred[1:], centred[:-1], strict=True))
    expected = products / sum(c * c for c in centred)
    rho = theory.onset_autocorrelation(np.array([line]), (1,))
    assert expected == Fraction(-13, 44) and rho[0, 0] == float(expected)
    melody = [*line, 0, 1]
    engine = rule_engine.RuleEngine(1, len(melody))
    for step, token in enumerate(melody):  # the rule engine's sums, kept token by token
        engine.advance(step, token)
    state = engine.state
    whole = theory.line_sums(np.array([melody]), (1, 2, 3))
    assert state[rule_engine.COUNT].tolist() == whole.count.tolist() == [4]
    assert state[rule_engine.TOTAL].tolist() == whole.total.tolist()
    assert state[rule_engine.TOTAL_SQUARES].tolist() == whole.total_squares.tolist()
    for field, row in (("lag_products", rule_engine.LAG_PRODUCTS), ("head", rule_engine.HEAD)):
        assert state[row : row + 3].tolist() == getattr(whole, field).tolist(), field
    assert state[rule_engine.TAIL : rule_engine.TAIL + 3].tolist() == whole.tail.tolist()
    assert state[rule_engine.RECENT : rule_engine.RECENT + 3].tolist() == [[60], [62], [64]]
    assert whole.recent.tolist() == [[60], [62], [64]]
    # (16 * 11528 + 4 * 246 * (60 + 60) - 5 * 246^2) / (4 * (4 * 15140 - 246^2)) = -52 / 176
    rho = theory.lag_autocorrelation(4, 246, 15140, 11528, 60, 60, 1)
    assert rho == theory.autocorrelation_from_sums(whole)[0, 0] == float(expected)
