"""Corpus extraction (hand-checked ABC tunes), the cache, and the splits."""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("music21")

from melody_env.data import corpus as corpus_module
from melody_env.data.corpus import (
    ExtractionSettings,
    Melodies,
    cache_path,
    default_cache_dir,
    load_collection,
    load_melodies,
)
from melody_env.data.extract import split_abc_tunes, tokens_from_abc
from melody_env.data.splits import SPLITS, make_splits, split_of


def abc(body: str, key: str = "C", meter: str = "4/4", unit: str = "1/8") -> str:
    return f"X:1\nT:test\nM:{meter}\nL:{unit}\nK:{key}\n{body}\n"


# ---------------------------------------------------------------- extraction, hand-checked


def test_rest_tie_and_octave_folding():
    # c2 = C5 quarter, d = D5 eighth, e- e4 = E5 tied eighth + half, z2 = quarter rest,
    # g2 = G5, a/ b/ = A5 B5 sixteenths, c' = C6 (84, folds to 72), C,2 = C3 (48).
    tokens = tokens_from_abc(abc("c2 d e- e4 | z2 g2 a/b/c' C,2 |]"), transpose=False)
    expected = [26, 0, 0, 0, 28, 0, 30] + [0] * 9 + [1, 0, 0, 0]
    expected += [33, 0, 0, 0, 35, 37, 26, 0, 2, 0, 0, 0]
    assert tokens.tolist() == expected


def test_far_octaves_fold_into_range():
    # C,, = MIDI 36 -> 48 (token 2); c'' = MIDI 96 -> 72 (token 26); B, = 47 -> 59 (token 13).
    tokens = tokens_from_abc(abc("C,,2 c''2 B,2 c2 |]"), transpose=False)
    assert tokens.tolist() == [2, 0, 0, 0, 26, 0, 0, 0, 13, 0, 0, 0, 26, 0, 0, 0]


def test_leading_silence_is_cut_and_accidentals_carry_through_the_bar():
    # ABC 2.1: the flat on the first B carries to the second B of the bar, not to the next bar.
    tokens = tokens_from_abc(abc("z2 _B B c B | B4 |]", key="C", unit="1/4"), transpose=False)
    b_flat, b_natural, c = 70 - 46, 71 - 46, 72 - 46
    assert (
        tokens.tolist()
        == [b_flat, 0, 0, 0, b_flat, 0, 0, 0, c, 0, 0, 0, b_flat, 0, 0, 0, b_natural] + [0] * 15
    )


def test_minor_tune_is_transposed_to_a_minor():
    # A clear D-minor tune: music21 finds D minor, the nearest shift to A minor is -5 semitones.
    tune = abc("D2 F2 A2 d2 | ^c2 d2 A2 F2 | E2 D2 ^C2 D2 | D8 |]", key="Dm")
    tokens = tokens_from_abc(tune)
    d, f, a, d5, cs5, e, cs = (p - 5 - 46 for p in (62, 65, 69, 74, 73, 64, 61))
    expected = [d, 0, 0, 0, f, 0, 0, 0, a, 0, 0, 0, d5, 0, 0, 0]
    expected += [cs5, 0, 0, 0, d5, 0, 0, 0, a, 0, 0, 0, f, 0, 0, 0]
    expected += [e, 0, 0, 0, d, 0, 0, 0, cs, 0, 0, 0, d, 0, 0, 0] + [d] + [0] * 15
    assert tokens.tolist() == expected
    assert d == 57 - 46  # D4 became A3


def test_major_tune_is_transposed_to_c_major():
    tokens = tokens_from_abc(abc("G2 B2 d2 B2 | c2 A2 F2 A2 | G8 |]", key="G"))
    # G major -> C major: +5 semitones; G4 (67) -> C5 (72).
    assert tokens[0] == 72 - 46
    assert tokens[-16] == 72 - 46


def test_grace_notes_chords_and_triplets():
    # {g} grace dropped; [CEG] keeps G; eighth-note triplet at quarter offsets 2, 2 1/3, 2 2/3
    # -> steps 8, 9, 11.
    tokens = tokens_from_abc(abc("{g}A2 [CEG]2 (3ABc d2 |]"), transpose=False)
    assert tokens.tolist() == [23, 0, 0, 0, 21, 0, 0, 0, 23, 25, 0, 26, 28, 0, 0, 0]


def test_fast_tuplet_notes_that_collapse_are_dropped():
    # Sixteenth triplet: onsets 0, 2/3, 4/3 sixteenths -> steps 0, 1, 1: the C collapses.
    tokens = tokens_from_abc(abc("(3A/B/c/ d/ e2 |]", meter="2/4"), transpose=False)
    assert tokens.tolist() == [23, 25, 28, 30, 0, 0, 0]


def test_split_abc_tunes_keeps_file_header_fields():
    text = "% comment\nL:1/16\n\nX:1\nK:C\nc4\n\nX:2\nK:G\nd4\n"
    tunes = split_abc_tunes(text)
    assert [number for number, _ in tunes] == ["1", "2"]
    assert tunes[1][1].startswith("X:2\nL:1/16\n")
    # L:1/16 from the file header applies: c4 is a quarter note (with L:1/8 it would be 8 steps).
    assert tokens_from_abc(tunes[0][1], transpose=False).tolist() == [26, 0, 0, 0]


# ---------------------------------------------------------------- cache


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache")
    melodies = load_collection("miscFolk", cache_dir=folder, processes=1, limit=6, progress=False)
    return folder, melodies


def test_cache_round_trip(tiny_cache, monkeypatch):
    folder, melodies = tiny_cache
    assert len(melodies) > 0 and melodies.stats["tunes"] == 6
    monkeypatch.setattr(corpus_module, "extract_collection", pytest.fail)  # must not re-extract
    again = load_collection("miscFolk", cache_dir=folder, limit=6, progress=False)
    np.testing.assert_array_equal(again.tokens, melodies.tokens)
    np.testing.assert_array_equal(again.offsets, melodies.offsets)
    assert again.piece_ids.tolist() == melodies.piece_ids.tolist()
    assert again.stats == melodies.stats
    with np.load(cache_path("miscFolk", folder, 6), allow_pickle=False) as data:
        assert all(data[name].dtype != object for name in data.files)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],  # truncated: a write cut short
        lambda data: b"not a zip archive, not an npz" * 8,  # garbage
    ],
    ids=["truncated", "garbage"],
)
def test_corrupted_cache_is_rebuilt(tiny_cache, corrupt):
    folder, melodies = tiny_cache
    path = cache_path("miscFolk", folder, 6)
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ValueError, match=rf"{re.escape(path.name)} is unreadable"):
        load_melodies(path)
    rebuilt = load_collection("miscFolk", cache_dir=folder, processes=1, limit=6, progress=False)
    np.testing.assert_array_equal(rebuilt.tokens, melodies.tokens)
    load_melodies(path)  # valid again


def test_changed_settings_rebuild_the_cache(tiny_cache, monkeypatch):
    folder, melodies = tiny_cache
    calls = []
    original = corpus_module.extract_collection

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(corpus_module, "extract_collection", counting)
    strict = ExtractionSettings(min_steps=400)
    fewer = load_collection("miscFolk", strict, folder, processes=1, limit=6, progress=False)
    assert len(calls) == 1
    assert len(fewer) < len(melodies) and (fewer.lengths >= 400).all()
    load_collection("miscFolk", strict, folder, processes=1, limit=6, progress=False)
    assert len(calls) == 1  # the new settings' cache is now valid


def test_parallel_extraction_matches_serial(tiny_cache):
    _, melodies = tiny_cache
    parallel = corpus_module.extract_collection("miscFolk", processes=2, limit=6, progress=False)
    np.testing.assert_array_equal(parallel.tokens, melodies.tokens)
    assert parallel.piece_ids.tolist() == melodies.piece_ids.tolist()


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MELODY_RL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "corpus"


def test_unknown_collection_is_named():
    with pytest.raises(ValueError, match=r"'nottingham'.*essenFolksong"):
        load_collection("nottingham")


# ---------------------------------------------------------------- splits


def fake_collection(name: str, count: int, seed: int = 0) -> Melodies:
    rng = np.random.default_rng(seed)
    melodies = [
        rng.integers(0, 38, size=int(rng.integers(32, 64))).astype(np.uint8) for _ in range(count)
    ]
    lengths = [len(m) for m in melodies]
    return Melodies(
        name,
        np.concatenate(melodies),
        np.concatenate([[0], np.cumsum(lengths)]),
        np.array([f"book/{i:04d}" for i in range(count)]),
    )


def test_splits_are_deterministic_disjoint_and_near_90_5_5():
    collections = {
        "oneills1850": fake_collection("oneills1850", 2000),
        "airdsAirs": fake_collection("airdsAirs", 50, seed=1),
    }
    splits, removed = make_splits(collections, held_out="airdsAirs")
    again, _ = make_splits(dict(reversed(collections.items())), held_out="airdsAirs")
    assert set(splits) == set(SPLITS)
    for name in SPLITS:
        assert splits[name].ids == again[name].ids
    all_ids = [i for name in SPLITS for i in splits[name].ids]
    assert len(all_ids) == len(set(all_ids)) == 2050
    assert all(i.startswith("airdsAirs/") for i in splits["heldout"].ids)
    assert not any(i.startswith("airdsAirs/") for n in SPLITS[:3] for i in splits[n].ids)
    assert 1740 < len(splits["train"].melodies) < 1860
    assert 60 < len(splits["validation"].melodies) < 140
    assert removed == {"validation": 0, "test": 0, "heldout": 0}
    # A piece's split depends only on its collection and id.
    assert split_of("oneills1850", "book/0007") == split_of("oneills1850", "book/0007")


def test_evaluation_copies_of_training_melodies_are_removed():
    base = fake_collection("miscFolk", 200)
    held = Melodies("airdsAirs", base.tokens.copy(), base.offsets.copy(), base.piece_ids.copy())
    splits, removed = make_splits({"miscFolk": base, "airdsAirs": held}, held_out="airdsAirs")
    assert removed["heldout"] == len(splits["train"].melodies)
    assert len(splits["heldout"].melodies) == 200 - removed["heldout"]


def test_held_out_must_be_loaded():
    with pytest.raises(ValueError, match="held-out collection 'airdsAirs'"):
        make_splits({"miscFolk": fake_collection("miscFolk", 5)}, held_out="airdsAirs")


def test_tritone_tune_moves_down_as_the_shipped_corpus_did():
    """F# major is a tritone from C: the corpus moved such tunes down 6 semitones (F#4 -> C4),
    not up, and :meth:`Key.semitones_to` keeps that convention."""
    tune = abc("F2 A2 c2 A2 | B2 G2 E2 G2 | F2 A2 c2 f2 | F8 |]", key="F#")
    assert tokens_from_abc(tune, transpose=False)[0] == 66 - 46  # F#4
    assert tokens_from_abc(tune)[0] == 60 - 46  # C4
