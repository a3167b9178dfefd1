"""The reward RNN in every key: the reading into C major / A minor, ``key="any"``.

See :mod:`melody_env.music.transposition` for the reading these tests pin down.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from melody_env import MelodyCompositionEnv, MelodyCompositionVectorEnv
from melody_env.envs.priming import ALL_KEYS
from melody_env.models import NoteRNN
from melody_env.music.encoding import NUM_CLASSES, TOKEN_PITCHES, token_from_name
from melody_env.music.keys import KEY_NAMES, Key
from melody_env.music.transposition import (
    KEY_SHIFTS,
    READING_TABLES,
    from_reference_log_probs,
    reading_table,
    reference_shift,
    to_reference_tokens,
    transpose_tokens,
)

HELDOUT = Path(__file__).parent / "data" / "heldout_airds_airs.json"


@pytest.fixture(scope="module")
def shipped() -> NoteRNN:
    return NoteRNN.load()


def tok(name: str) -> int:
    return token_from_name(name)


# --- the tables -------------------------------------------------------------------------------


def corpus_extraction_shift(tonic: int, mode: str) -> int:
    """The shipped corpus's transposition, as its extraction computed it when the Note RNN's data
    was made (melody_env/data/extract.py at 3ff4263): to C or A, the smallest interval, a tritone
    down."""
    shift = ((9 if mode == "minor" else 0) - tonic) % 12
    return shift - 12 if shift > 5 else shift


def test_semitones_to_is_the_smallest_interval_with_the_tritone_down():
    for source in range(12):
        for target in range(12):
            shift = Key(source).semitones_to(Key(target, "minor"))  # modes are ignored
            assert -6 <= shift <= 5 and (source + shift - target) % 12 == 0, (source, target)
    assert Key.from_name("F# major").semitones_to("C major") == -6  # the corpus's tritone
    assert Key.from_name("C major").semitones_to("F# major") == -6
    assert Key.from_name("G major").semitones_to("C major") == 5
    assert Key.from_name("E minor").semitones_to("A minor") == 5
    assert Key.from_name("D minor").semitones_to("A minor") == -5


def test_shift_is_the_corpus_extraction_interval():
    for name in KEY_NAMES:
        key = Key.from_name(name)
        assert reference_shift(key) == corpus_extraction_shift(key.tonic, key.mode), name
    assert [reference_shift(n) for n in ("C major", "A minor", "G major", "F major")] == [
        0,
        0,
        5,
        -5,
    ]
    assert [reference_shift(n) for n in ("F# major", "D# minor", "B major", "E minor")] == [
        -6,
        -6,
        1,
        5,
    ]


def test_reading_tables_by_hand():
    # G major, shift +5: G4 -> C5, F#5 -> B5; the top five notes G5..B5 wrap to C3..E3.
    g = READING_TABLES[Key.from_name("G major").index]
    assert g[tok("G4")] == tok("C5") and g[tok("F#5")] == tok("B5")
    assert [int(g[tok(n)]) for n in ("G5", "A5", "B5")] == [tok("C3"), tok("D3"), tok("E3")]
    assert g[tok("C3")] == tok("F3")
    # F major, shift -5: the bottom five notes C3..E3 wrap to the top, G5..B5.
    f = READING_TABLES[Key.from_name("F major").index]
    assert [int(f[tok(n)]) for n in ("C3", "E3", "F3", "C4")] == [
        tok("G5"),
        tok("B5"),
        tok("C3"),
        tok("G3"),
    ]
    # F# major, shift -6: C3 wraps to F#5; F#3 is read as C3.
    fs = READING_TABLES[Key.from_name("F# major").index]
    assert fs[tok("C3")] == tok("F#5") and fs[tok("F#3")] == tok("C3")
    # Hold and rest are read as themselves in every key.
    assert (READING_TABLES[:, :2] == [0, 1]).all()


def test_reading_tables_are_pitch_class_preserving_permutations():
    notes = np.arange(2, NUM_CLASSES)
    for index, name in enumerate(KEY_NAMES):
        table, shift = READING_TABLES[index], int(KEY_SHIFTS[index])
        assert sorted(table.tolist()) == list(range(NUM_CLASSES)), name
        pitches, read = TOKEN_PITCHES[notes], TOKEN_PITCHES[table[notes]]
        assert ((read - pitches - shift) % 12 == 0).all(), name
        # Exactly the |shift| notes that leave the range after the shift are read elsewhere.
        moved = read != pitches + shift
        assert moved.sum() == abs(shift), name
        assert (np.abs(read[moved] - pitches[moved] - shift) == 36).all(), name
    identity = np.arange(NUM_CLASSES)
    for name in ("C major", "A minor"):
        assert (READING_TABLES[Key.from_name(name).index] == identity).all()
        assert (reading_table(0) == identity).all()


def test_helpers_apply_the_tables():
    key = Key.from_name("D major")  # shift -2
    tokens = np.array([[tok("D4"), 0, 1], [tok("C3"), tok("B5"), tok("E3")]])
    read = to_reference_tokens(tokens, key)
    assert read.tolist() == [[tok("C4"), 0, 1], [tok("A#5"), tok("A5"), tok("D3")]]
    log_probs = np.log(np.arange(1, 39, dtype=np.float64) / np.arange(1, 39).sum())
    mapped = from_reference_log_probs(log_probs, key)
    assert mapped[tok("D4")] == log_probs[tok("C4")]
    assert np.isclose(np.logaddexp.reduce(mapped), 0.0)
    # transpose_tokens folds by octaves like the corpus, not around the ring.
    assert transpose_tokens(np.array([tok("B5"), 0, tok("C3")]), 2).tolist() == [
        tok("C#5"),
        0,
        tok("D3"),
    ]


# --- the envs ---------------------------------------------------------------------------------


def run_single(rnn, key, actions, primer=None):
    env = MelodyCompositionEnv(key=key, reward_rnn=rnn, primer=primer)
    _, info = env.reset(seed=0)
    priors, log_probs, rewards = [info["prior_log_probs"]], [], []
    for action in actions:
        _, reward, _, _, info = env.step(int(action))
        priors.append(info["prior_log_probs"])
        log_probs.append(info["log_prob"])
        rewards.append(reward)
    return np.array(priors), np.array(log_probs), np.array(rewards)


def test_c_major_and_a_minor_read_the_tokens_as_they_are(shipped):
    actions = np.random.default_rng(0).integers(0, NUM_CLASSES, 32)
    primer = [tok("E4"), 0, tok("G4")]
    for key in ("C major", "A minor"):
        priors, _, _ = run_single(shipped, key, actions, primer)
        log_probs, state = shipped.step_arrays(np.array(primer[:1]), shipped_state(shipped))
        for token in primer[1:]:
            log_probs, state = shipped.step_arrays(np.array([token]), state)
        expected = [log_probs[0]]
        for action in actions:
            log_probs, state = shipped.step_arrays(np.array([action]), state)
            expected.append(log_probs[0])
        np.testing.assert_array_equal(priors, np.array(expected))


def shipped_state(rnn):
    return tuple(x.numpy() for x in rnn.initial_state(1))


@pytest.mark.parametrize("name", ["G major", "F# major", "F major", "B minor", "D# minor"])
def test_any_key_is_its_reference_key_relabelled(shipped, name):
    """The episode in ``name`` with actions ``a`` scores exactly as the reference-key episode
    with the actions read through the table, and its prior is the reference prior permuted."""
    key = Key.from_name(name)
    table = READING_TABLES[key.index]
    reference = "C major" if key.mode == "major" else "A minor"
    actions = np.random.default_rng(1).integers(0, NUM_CLASSES, 32)
    primer = [tok("G5"), tok("C3"), 0]
    priors, log_probs, _ = run_single(shipped, key, actions, primer)
    ref_priors, ref_log_probs, _ = run_single(
        shipped, reference, table[actions], table[primer].tolist()
    )
    np.testing.assert_array_equal(log_probs, ref_log_probs)
    np.testing.assert_array_equal(priors, ref_priors[:, table])
    # A distribution over the 38 playable tokens after every step.
    np.testing.assert_allclose(np.logaddexp.reduce(priors, axis=1), 0.0, atol=1e-5)


def test_vector_env_reads_each_env_in_its_key(shipped):
    names = ["C major", "G major", "F# major", "E minor", "A minor", "C# minor"]
    actions = np.random.default_rng(2).integers(0, NUM_CLASSES, (32, len(names)))
    envs = MelodyCompositionVectorEnv(len(names), reward_rnn=shipped, primer=[tok("B5"), 0])
    _, info = envs.reset(seed=0, options={"key": names})
    priors, log_probs = [info["prior_log_probs"]], []
    for step_actions in actions:
        _, _, _, _, info = envs.step(step_actions)
        priors.append(info["prior_log_probs"])
        log_probs.append(info["log_prob"])
    priors, log_probs = np.array(priors), np.array(log_probs)
    for env, name in enumerate(names):
        single_priors, single_log_probs, _ = run_single(
            shipped, name, actions[:, env], [tok("B5"), 0]
        )
        np.testing.assert_allclose(priors[:, env], single_priors, atol=1e-5)
        np.testing.assert_allclose(log_probs[:, env], single_log_probs, atol=1e-5)
    np.testing.assert_allclose(np.logaddexp.reduce(priors, axis=-1), 0.0, atol=1e-5)


def test_mixed_primer_lengths_are_read_in_their_keys(shipped):
    envs = MelodyCompositionVectorEnv(2, reward_rnn=shipped)
    primers = [[tok("G5")], [tok("G5"), 0, tok("A5")]]
    _, info = envs.reset(seed=0, options={"key": ["G major", "D major"], "primer": primers})
    for env, (name, primer) in enumerate(zip(["G major", "D major"], primers, strict=True)):
        priors, _, _ = run_single(shipped, name, [], primer)
        np.testing.assert_allclose(info["prior_log_probs"][env], priors[0], atol=1e-5)


def test_heldout_melodies_score_the_same_in_every_key(shipped):
    """Six held-out airs, moved to each key of their mode by the env's own interval wherever
    every note stays in the range, cost exactly their reference-key cross-entropy; read as
    played (before the reading existed) they cost at least 0.3 nats/token more in most keys."""
    melodies = [np.array(m, np.int64) for m in json.loads(HELDOUT.read_text())["melodies"]]

    def cross_entropy(melody, key):
        env = MelodyCompositionEnv(
            key=key, reward_rnn=shipped, primer=melody[:1], composition_length=len(melody) - 1
        )
        env.reset(seed=0)
        return -np.mean([env.step(int(a))[4]["log_prob"] for a in melody[1:]])

    checked = 0
    for melody in melodies[:3]:
        reference = cross_entropy(melody, "C major")
        for name in ("G major", "D major", "A# major", "E major"):
            semitones = -reference_shift(name)
            pitches = TOKEN_PITCHES[melody[melody >= 2]] + semitones
            if pitches.min() < 48 or pitches.max() > 83:
                continue
            moved = transpose_tokens(melody, semitones)
            assert cross_entropy(moved, name) == pytest.approx(reference, abs=1e-6), name
            checked += 1
    assert checked >= 6
    # The old behaviour, for contrast: the reward RNN read G major melodies as played.
    melody = melodies[0]
    moved = transpose_tokens(melody, -reference_shift("E major"))
    untransposed = cross_entropy(moved, "C major")  # C major reads the tokens as they are
    assert untransposed > cross_entropy(melody, "C major") + 0.3


# --- key="any" ---------------------------------------------------------------------------------


def test_any_key_is_drawn_from_the_seed_and_shown():
    rnn = NoteRNN(seed=0)
    env = MelodyCompositionEnv(key="any", reward_rnn=rnn)
    keys = []
    for seed in range(200):
        obs, info = env.reset(seed=seed)
        key = Key.from_name(info["key"])
        keys.append(key.index)
        tonic = env.layout.slices["key_tonic"]
        mode = env.layout.slices["key_mode"]
        assert obs[tonic].argmax() == key.tonic and obs[mode].argmax() == ("major", "minor").index(
            key.mode
        )
    assert len(set(keys)) == 24  # all 24 are drawn (200 draws: missing one has p < 1e-2)
    again = [Key.from_name(env.reset(seed=s)[1]["key"]).index for s in range(200)]
    assert again == keys
    # The same generator draws the key, then the primer: both repeat with the seed.
    first = env.reset(seed=7)[1]
    assert env.reset(seed=7)[1]["primer"].tolist() == first["primer"].tolist()
    # Unseeded resets continue the generator: the key changes from episode to episode.
    env.reset(seed=3)
    assert len({env.reset()[1]["key"] for _ in range(20)}) > 5


def test_any_key_vector_env_matches_single_envs_and_redraws_at_autoreset():
    rnn = NoteRNN(seed=0)
    envs = MelodyCompositionVectorEnv(4, key="Any", reward_rnn=rnn, composition_length=2)
    _, info = envs.reset(seed=100)
    for index in range(4):
        single = MelodyCompositionEnv(key="any", reward_rnn=rnn, composition_length=2)
        _, single_info = single.reset(seed=100 + index)
        assert info["key"][index] == single_info["key"]
        assert info["primer"][index].tolist() == single_info["primer"].tolist()
        np.testing.assert_allclose(
            info["prior_log_probs"][index], single_info["prior_log_probs"], atol=1e-5
        )
    first = tuple(info["key"])
    for _ in range(2):
        envs.step(np.zeros(4, np.int64))
    _, _, _, _, info = envs.step(np.zeros(4, np.int64))  # the autoreset step
    assert "key" in info and tuple(info["key"]) != first
    assert envs.episode_keys == tuple(info["key"])


def test_any_key_as_a_reset_option_and_bad_keys():
    rnn = NoteRNN(seed=0)
    env = MelodyCompositionEnv(reward_rnn=rnn)
    assert env.reset(seed=0)[1]["key"] == "C major"
    drawn = {env.reset(seed=s, options={"key": "any"})[1]["key"] for s in range(40)}
    assert len(drawn) > 10
    envs = MelodyCompositionVectorEnv(3, reward_rnn=rnn)
    _, info = envs.reset(seed=0, options={"key": ["any", "G major", "any"]})
    assert info["key"][1] == "G major"
    with pytest.raises(ValueError, match=r"unknown key 'H major'.*or 'any'"):
        MelodyCompositionEnv(key="H major", reward_rnn=rnn)
    with pytest.raises(ValueError, match=r"key must be a key name .* got 5"):
        env.reset(options={"key": 5})
    with pytest.raises(ValueError, match=r"options\['key'\] must be a key name"):
        envs.reset(options={"key": 5})
    with pytest.raises(ValueError, match=r"reset options must be a dict"):
        env.reset(options=["key"])
    with pytest.raises(ValueError, match=r"reset options must be a dict"):
        envs.reset(options=["key"])


def test_gym_make_with_any_key():
    env = gym.make("melody_env/MelodyComposition-v0", key="any", reward_rnn=NoteRNN(seed=0))
    _, info = env.reset(seed=0)
    assert Key.from_name(info["key"]) in ALL_KEYS


def test_g_learning_prior_reads_the_key_as_the_env_does(shipped):
    """The G agent's acting prior (its policy scores minus a Q agent's, whose Q-networks are the
    same Note RNN copies) is the env's ``prior_log_probs`` at every step, in every key."""
    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rl_tuner.config import make_config

    g_agent = RLTunerAgent(make_config("fast", "g"), shipped)
    q_agent = RLTunerAgent(make_config("fast", "q"), shipped)
    names = ["G major", "C major", "F# minor", "D# major"]
    envs = MelodyCompositionVectorEnv(len(names), reward_rnn=shipped, primer=[37, 0, 33])
    obs, info = envs.reset(seed=0, options={"key": names})
    g_state, q_state = g_agent.initial_state(len(names)), q_agent.initial_state(len(names))
    start = np.ones(len(names), bool)
    actions = np.random.default_rng(3).integers(0, NUM_CLASSES, (12, len(names)))
    for step_actions in actions:
        g_scores, g_state = g_agent.step(obs.astype(np.float32), g_state, start)
        q_scores, q_state = q_agent.step(obs.astype(np.float32), q_state, start)
        np.testing.assert_allclose(
            (g_scores - q_scores).numpy(), info["prior_log_probs"], atol=2e-5
        )
        start[:] = False
        obs, _, _, _, info = envs.step(step_actions)


@pytest.mark.parametrize("algo", ["q", "g"])
def test_agent_composes_in_every_key_as_in_its_reference_key(shipped, algo):
    """The RL Tuner agent's scores in a key are its reference-key scores on the read tokens,
    permuted back: exactly, primer included."""
    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rl_tuner.config import make_config

    agent = RLTunerAgent(make_config("fast", algo), shipped)
    names = ["G major", "E minor", "F# major", "C major"]
    references = ["C major", "A minor", "C major", "C major"]
    tables = READING_TABLES[[Key.from_name(name).index for name in names]]
    primer = np.array([tok("G5"), 0, tok("C3")])
    envs = MelodyCompositionVectorEnv(4, reward_rnn=shipped)
    ref_envs = MelodyCompositionVectorEnv(4, reward_rnn=shipped)
    obs, _ = envs.reset(seed=0, options={"key": names, "primer": [primer] * 4})
    ref_obs, _ = ref_envs.reset(
        seed=0, options={"key": references, "primer": [table[primer] for table in tables]}
    )
    state, ref_state = agent.initial_state(4), agent.initial_state(4)
    start = np.ones(4, bool)
    for step_actions in np.random.default_rng(4).integers(0, NUM_CLASSES, (10, 4)):
        scores, state = agent.step(obs.astype(np.float32), state, start)
        ref_scores, ref_state = agent.step(ref_obs.astype(np.float32), ref_state, start)
        np.testing.assert_array_equal(
            scores.numpy(), np.take_along_axis(ref_scores.numpy(), tables, axis=1)
        )
        start[:] = False
        obs, *_ = envs.step(step_actions)
        ref_obs, *_ = ref_envs.step(np.take_along_axis(tables, step_actions[:, None], 1)[:, 0])


def test_replay_stores_compositions_in_the_reference_key():
    from agents.rl_tuner.replay import CompositionReplay

    replay = CompositionReplay(capacity=2, length=3, primer_width=2)
    prior = np.log(np.full((3, NUM_CLASSES), 1 / NUM_CLASSES, np.float32))
    prior[:, tok("G4")] = 5.0  # marks G4's entry
    actions = np.array([tok("G4"), 0, tok("B5")])
    terminals = np.array([False, False, True])
    g_major = Key.from_name("G major").index
    replay.add([tok("D4")], actions, np.zeros(3), prior, terminals, key_index=g_major)
    replay.add([tok("D4")], actions, np.zeros(3), prior, terminals)  # C major: as it is
    assert replay.actions[0].tolist() == [tok("C5"), 0, tok("E3")]
    assert replay.primers[0, -1] == tok("G4")  # D4 read in G major
    assert (replay.prior_log_probs[0][:, tok("C5")] == 5.0).all()  # G4's entry, now C5's
    assert replay.actions[1].tolist() == actions.tolist()
    np.testing.assert_array_equal(replay.prior_log_probs[1], prior)


def test_compositions_record_their_keys():
    from agents.rl_tuner.agent import RLTunerAgent
    from agents.rl_tuner.config import make_config
    from agents.rl_tuner.rollout import compose

    rnn = NoteRNN(seed=0)
    agent = RLTunerAgent(make_config("fast", "q"), rnn)
    envs = MelodyCompositionVectorEnv(4, key="any", reward_rnn=rnn)
    compositions = compose(agent, envs, 6, seed=0)
    assert compositions.keys.shape == (6,) and len(set(compositions.keys.tolist())) > 1
    for row in range(6):
        key = ALL_KEYS[compositions.key_of(row)]
        # The key term of each step agrees with the recorded key.
        pitches = TOKEN_PITCHES[compositions.actions[row]]
        outside = (compositions.actions[row] >= 2) & ~key.scale_mask[pitches % 12]
        np.testing.assert_array_equal(compositions.terms["key"][row] < 0, outside)


def test_model_card_says_what_the_prior_knows():
    from melody_env.models.model_card import KEYS_SECTION

    card = (Path(__file__).parents[1] / "melody_env/models/checkpoints/MODEL_CARD.md").read_text()
    assert KEYS_SECTION.strip() in card
    assert "benchmarks/key_fidelity.py" in KEYS_SECTION
