"""MelodyCompositionEnv: API contracts, determinism, priming, rendering, MIDI and bad input."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pretty_midi
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import melody_env
from melody_env import MelodyCompositionEnv
from melody_env.envs.observation import ObservationLayout
from melody_env.music.keys import Key
from tests.conftest import tokens

ENV_ID = "melody_env/MelodyComposition-v0"


@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_gymnasium_check_env_passes_without_warnings(tiny_rnn, render_mode):
    env = gym.make(ENV_ID, reward_rnn=tiny_rnn, render_mode=render_mode).unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=False)


@pytest.mark.parametrize("render_mode", [None, "ansi", "rgb_array"])
def test_sb3_check_env_passes_without_warnings(tiny_rnn, render_mode):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = MelodyCompositionEnv(reward_rnn=tiny_rnn, render_mode=render_mode, key="D minor")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True, skip_render_check=False)


def test_observations_are_int8_one_hots_and_dtype_observation_gives_floats(tiny_rnn):
    env = gym.make(ENV_ID, reward_rnn=tiny_rnn)
    assert env.observation_space == gym.spaces.MultiBinary(1620)
    floats = gym.wrappers.DtypeObservation(gym.make(ENV_ID, reward_rnn=tiny_rnn), np.float32)
    assert floats.observation_space == gym.spaces.Box(0.0, 1.0, (1620,), np.float32)
    obs, _ = env.reset(seed=3)
    float_obs, _ = floats.reset(seed=3)
    for step, action in enumerate([2, 16, 0, 1, 30]):
        assert obs.dtype == np.int8 and float_obs.dtype == np.float32
        assert env.observation_space.contains(obs) and floats.observation_space.contains(float_obs)
        np.testing.assert_array_equal(float_obs, obs)
        # last token, primer token, position, beat, tonic, mode, and one per token played
        assert obs.sum() == 6 + step and obs[:38].sum() == 1
        obs = env.step(action)[0]
        float_obs = floats.step(action)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(floats.unwrapped)


def test_make_with_module_prefix_and_registered_id(tiny_rnn_path):
    env = gym.make("melody_env:melody_env/MelodyComposition-v0", reward_rnn=tiny_rnn_path)
    assert isinstance(env.unwrapped, MelodyCompositionEnv)
    assert ENV_ID in gym.registry


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    trace = [obs, info["primer"]]
    for action in actions:
        obs, reward, terminated, _truncated, info = env.step(action)
        trace += [obs, reward, terminated, info["log_prob"], sorted(info["reward_terms"].items())]
    return trace


def test_same_seed_same_episode(tiny_rnn):
    actions = list(np.random.default_rng(1).integers(0, 38, size=32))
    first = rollout(MelodyCompositionEnv(reward_rnn=tiny_rnn), 7, actions)
    second = rollout(MelodyCompositionEnv(reward_rnn=tiny_rnn), 7, actions)
    other = rollout(MelodyCompositionEnv(reward_rnn=tiny_rnn), 8, actions)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_equal(a, b)
    assert not np.array_equal(first[1], other[1]) or not np.array_equal(first[2], other[2])


def test_random_primer_draws_every_token(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    drawn = {int(env.reset(seed=seed)[1]["primer"][0]) for seed in range(600)}
    assert drawn == set(range(38))  # the original never drew token 37


def test_pickle_round_trip(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn, key="E minor")
    env.reset(seed=0)
    env.step(16)
    clone = pickle.loads(pickle.dumps(env))
    for _ in range(5):
        a, b = env.step(18), clone.step(18)
        np.testing.assert_equal(a[:4], b[:4])


def test_async_vector_rollout(tiny_rnn_path):
    envs = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="async", reward_rnn=tiny_rnn_path)
    try:
        obs, _ = envs.reset(seed=0)
        assert obs.shape == (2, 1620)
        for _ in range(40):
            obs, rewards, _terminated, _truncated, _info = envs.step(envs.action_space.sample())
            assert np.isfinite(rewards).all()
    finally:
        envs.close()


def test_random_rollout_stays_in_the_observation_space(tiny_rnn):
    env = gym.make(ENV_ID, reward_rnn=tiny_rnn)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    episodes = 0
    for _ in range(10_000):
        obs, reward, terminated, _truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        assert np.isfinite(reward)
        if terminated:
            episodes += 1
            obs, _ = env.reset()
    assert episodes == 10_000 // 32


def test_episode_length_and_termination(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn, composition_length=12, steps_per_bar=4)
    env.reset(seed=0)
    flags = [env.step(2)[2] for _ in range(12)]
    assert flags == [False] * 11 + [True]
    assert env.composition.tolist() == [2] * 12
    with pytest.raises(RuntimeError, match="reset"):
        env.step(2)


def test_observation_layout(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn, key="F# minor", primer=[14, 0, 16])
    obs, _ = env.reset(seed=0)
    s = ObservationLayout(32, 8, 16).slices
    assert obs[s["last_token"]].argmax() == 16
    primer = obs[s["primer"]].reshape(8, 38)
    assert primer[:5].sum() == 0 and primer[5:].argmax(axis=1).tolist() == [14, 0, 16]
    assert obs[s["position"]].argmax() == 0 and obs[s["beat"]].argmax() == 0
    assert obs[s["key_tonic"]].argmax() == 6 and obs[s["key_mode"]].argmax() == 1
    for _step, token in enumerate(tokens("F#4 hold A4 rest")):
        obs, *_ = env.step(token)
    composition = obs[s["composition"]].reshape(32, 38)
    assert composition[:4].argmax(axis=1).tolist() == tokens("F#4 hold A4 rest")
    assert composition[4:].sum() == 0
    assert obs[s["last_token"]].argmax() == 1
    assert obs[s["position"]].argmax() == 4 and obs[s["beat"]].argmax() == 4


def _observation_from_scratch(layout, primer, key, played):
    """The observation after ``played`` tokens, built entry by entry from the layout's table."""
    s, obs = layout.slices, np.zeros(layout.size, np.int8)
    obs[s["last_token"].start + (played or primer)[-1]] = 1
    for slot, token in enumerate(played):
        obs[s["composition"].start + 38 * slot + token] = 1
    for slot, token in enumerate(primer[-layout.primer_context :]):
        offset = layout.primer_context - len(primer[-layout.primer_context :])
        obs[s["primer"].start + 38 * (offset + slot) + token] = 1
    if len(played) < layout.composition_length:
        obs[s["position"].start + len(played)] = 1
        obs[s["beat"].start + len(played) % layout.steps_per_bar] = 1
    obs[s["key_tonic"].start + key.tonic] = 1
    obs[s["key_mode"].start + ["major", "minor"].index(key.mode)] = 1
    return obs


def test_written_observations_equal_ones_built_from_scratch():
    layout = ObservationLayout(composition_length=6, primer_context=2, steps_per_bar=4)
    primers = [np.array([5, 7, 9]), np.array([3])]
    keys = [Key.from_name("A minor"), Key.from_name("Eb major")]
    songs = np.random.default_rng(0).integers(0, 38, size=(6, 2))
    obs = np.zeros((2, layout.size), np.int8)
    layout.write_reset(obs, primers, keys)
    rows = [np.zeros(layout.size, np.int8) for _ in range(2)]  # the single env's path
    for row, primer, key in zip(rows, primers, keys, strict=True):
        layout.write_reset(row[None], [primer], [key])
    for step in range(7):
        for index in range(2):
            played = songs[:step, index].tolist()
            expected = _observation_from_scratch(
                layout, primers[index].tolist(), keys[index], played
            )
            np.testing.assert_array_equal(obs[index], expected)
            np.testing.assert_array_equal(rows[index], expected)
        if step < 6:
            layout.write_step(obs, step, songs[step])
            for index, row in enumerate(rows):
                layout.write_step(row, step, int(songs[step, index]))


def test_write_step_refuses_bad_input_before_writing():
    layout = ObservationLayout(composition_length=6, primer_context=2, steps_per_bar=4)
    obs = np.zeros((3, layout.size), np.int8)
    layout.write_reset(obs, [np.array([2])] * 3, [Key.from_name("C major")] * 3)
    before = obs.copy()
    with pytest.raises(IndexError, match="token"):
        layout.write_step(obs, 0, np.array([2, 38, 4]))
    with pytest.raises(IndexError, match="token"):
        layout.write_step(obs[0], 0, -1)
    with pytest.raises(IndexError, match="step 6"):
        layout.write_step(obs, 6, np.array([2, 3, 4]))
    with pytest.raises(ValueError, match="entries"):
        layout.write_step(obs[:, 1:], 0, np.array([2, 3, 4]))
    with pytest.raises(ValueError, match="one token per"):
        layout.write_step(obs, 0, np.array([2, 3]))
    np.testing.assert_array_equal(obs, before)


def test_primer_options_and_key_options(tiny_rnn, tmp_path):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    _, info = env.reset(seed=0, options={"primer": tokens("C4 D4 E4"), "key": "Bb major"})
    assert info["primer"].tolist() == tokens("C4 D4 E4") and info["key"] == "A# major"
    # A MIDI primer is transposed to the episode's key.
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([62, 64, 66, 67, 69]):  # D major
        piano.notes.append(pretty_midi.Note(100, pitch, i * 0.5, (i + 1) * 0.5))
    midi.instruments.append(piano)
    path = tmp_path / "tune.mid"
    midi.write(str(path))
    _, info = env.reset(seed=0, options={"primer": str(path), "key": "C major"})
    onsets = [t for t in info["primer"] if t >= 2]
    assert [pretty_midi.note_number_to_name(t + 46) for t in onsets] == [
        "C4",
        "D4",
        "E4",
        "F4",
        "G4",
    ]


def test_reward_rnn_is_primed_on_the_primer(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    _, short = env.reset(seed=0, options={"primer": [14]})
    _, long = env.reset(seed=0, options={"primer": [18, 0, 14]})
    assert not np.allclose(short["prior_log_probs"], long["prior_log_probs"])


def test_render_modes(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn, render_mode="ansi")
    env.reset(seed=0)
    for token in tokens("C4 hold E4 G4"):
        env.step(token)
    text = env.render()
    assert "C4" in text and "E4" in text and "G4" in text
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn, render_mode="rgb_array")
    env.reset(seed=0)
    empty = env.render()
    env.step(14)
    image = env.render()
    assert image.dtype == np.uint8 and image.shape == empty.shape and image.ndim == 3
    assert not np.array_equal(image, empty)


def test_to_midi(tiny_rnn, tmp_path):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    env.reset(seed=0)
    for token in tokens("C4 hold hold hold E4 hold rest hold G4"):
        env.step(token)
    env.to_midi(tmp_path / "out.mid")
    notes = pretty_midi.PrettyMIDI(str(tmp_path / "out.mid")).instruments[0].notes
    step = 60 / 80 / 4
    assert [(n.pitch, round(n.start / step), round(n.end / step)) for n in notes] == [
        (60, 0, 4),
        (64, 4, 6),
        (67, 8, 9),
    ]


@pytest.mark.parametrize("action", [38, -1, 2.5, "C4", np.array([2, 3]), None])
def test_invalid_action_names_it(tiny_rnn, action):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"invalid action .*\[0, 37\]"):
        env.step(action)


def test_step_before_reset(tiny_rnn):
    with pytest.raises(RuntimeError, match="reset"):
        MelodyCompositionEnv(reward_rnn=tiny_rnn).step(2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": "H major"}, ValueError, "H major"),
        ({"reward_mode": "melodic"}, ValueError, "melodic"),
        ({"reward_weights": {"nope": 1.0}}, ValueError, "nope"),
        ({"primer": [14, 40]}, ValueError, "40"),
        ({"primer": []}, ValueError, "non-empty"),
        ({"primer": "missing.mid"}, FileNotFoundError, "missing.mid"),
        ({"composition_length": 0}, ValueError, "composition_length"),
        ({"composition_length": 10_001}, ValueError, "at most 10,000, got 10001"),
        ({"render_mode": "human"}, ValueError, "human"),
        ({"reward_rnn": "missing.safetensors"}, FileNotFoundError, "missing.safetensors"),
    ],
)
def test_bad_constructor_arguments(tiny_rnn, kwargs, error, match):
    kwargs.setdefault("reward_rnn", tiny_rnn)
    with pytest.raises(error, match=match):
        MelodyCompositionEnv(**kwargs)


def test_bad_reset_options(tiny_rnn, tmp_path):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    with pytest.raises(ValueError, match="Z minor"):
        env.reset(options={"key": "Z minor"})
    with pytest.raises(ValueError, match="tempo"):
        env.reset(options={"tempo": 3})
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with pytest.raises(ValueError, match=r"corrupt\.mid"):
        env.reset(options={"primer": str(corrupt)})
    drums = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(program=0, is_drum=True)
    kit.notes.append(pretty_midi.Note(100, 36, 0.0, 0.5))
    drums.instruments.append(kit)
    drums.write(str(tmp_path / "drums.mid"))
    with pytest.raises(ValueError, match="drum"):
        env.reset(options={"primer": str(tmp_path / "drums.mid")})
    empty = pretty_midi.PrettyMIDI()
    empty.write(str(tmp_path / "empty.mid"))
    with pytest.raises(ValueError, match=r"empty\.mid"):
        env.reset(options={"primer": str(tmp_path / "empty.mid")})


def test_corrupt_reward_rnn_checkpoint(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"bad\.safetensors"):
        MelodyCompositionEnv(reward_rnn=str(bad))
    pickled = tmp_path / "model.pt"
    pickled.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ValueError, match=r"model\.pt"):
        MelodyCompositionEnv(reward_rnn=str(pickled))


def test_package_exports():
    assert melody_env.ENV_ID == ENV_ID and len(melody_env.KEY_NAMES) == 24
