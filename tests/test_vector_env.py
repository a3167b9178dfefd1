"""MelodyCompositionVectorEnv: parity with N single envs, Gymnasium's vector API, bad input."""

from __future__ import annotations

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pretty_midi
import pytest

import melody_env
from melody_env import MelodyCompositionEnv, MelodyCompositionVectorEnv
from melody_env.models import NoteRNN

ENV_ID = "melody_env/MelodyComposition-v0"
FLOAT_TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
"""The reward RNN's float32 log-probs may differ in the last bits between batch sizes."""


@pytest.fixture(scope="module")
def rnn() -> NoteRNN:
    """Random weights, the shipped architecture (1 layer, 100 units)."""
    return NoteRNN(seed=0)


@pytest.fixture(scope="module")
def midi_primer(tmp_path_factory) -> str:
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([62, 64, 66, 67, 69]):  # D major, eighth notes
        piano.notes.append(pretty_midi.Note(100, pitch, i * 0.25, (i + 1) * 0.25))
    midi.instruments.append(piano)
    path = tmp_path_factory.mktemp("midi") / "primer.mid"
    midi.write(str(path))
    return str(path)


def melodic_actions(rng: np.random.Generator, steps: int, num_envs: int) -> np.ndarray:
    """``[steps, N]`` tokens: some envs uniform, others a few in-key tokens (repeats, motifs)."""
    uniform = rng.integers(0, 38, size=(steps, num_envs))
    few = rng.choice([14, 16, 18, 21, 26, 0, 0, 1], size=(steps, num_envs))
    return np.where(np.arange(num_envs) % 2 == 0, uniform, few)


def assert_info_close(vector_info: dict, single_infos: list[dict]) -> None:
    for index, single in enumerate(single_infos):
        for name, value in single.items():
            if name == "reward_terms":
                for term, term_value in value.items():
                    got = vector_info["reward_terms"][term][index]
                    if term == "log_prob":
                        np.testing.assert_allclose(got, term_value, **FLOAT_TOLERANCE)
                    else:
                        assert got == term_value, (term, index)
            elif name in ("log_prob", "prior_log_probs"):
                np.testing.assert_allclose(vector_info[name][index], value, **FLOAT_TOLERANCE)
            elif name == "primer":
                np.testing.assert_array_equal(vector_info[name][index], value)
            else:
                assert vector_info[name][index] == value, (name, index)
            assert vector_info[f"_{name}"][index]


def per_env_options(options: dict | None, num_envs: int) -> list[dict | None]:
    """The single envs' reset options equivalent to the vector env's (lists are per env)."""
    if options is None:
        return [None] * num_envs
    split = [{} for _ in range(num_envs)]
    for name, value in options.items():
        per_env = isinstance(value, list) and not all(isinstance(v, int) for v in value)
        for index in range(num_envs):
            item = value[index] if per_env else value
            if item is not None:
                split[index][name] = item
    return split


def assert_parity(rnn, num_envs, seed, env_kwargs, options=None, steps=None):
    """N single envs and one vector env, same seeds and actions, over two episodes + autoreset."""
    vector = MelodyCompositionVectorEnv(num_envs, reward_rnn=rnn, **env_kwargs)
    singles = [MelodyCompositionEnv(reward_rnn=rnn, **env_kwargs) for _ in range(num_envs)]
    single_options = per_env_options(options, num_envs)
    obs, info = vector.reset(seed=seed, options=options)
    results = [env.reset(seed=seed + i, options=single_options[i]) for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack([o for o, _ in results]))
    assert_info_close(info, [i for _, i in results])

    length = vector.layout.composition_length
    steps = steps or 2 * length + 1  # episode, autoreset step, episode
    actions = melodic_actions(np.random.default_rng(seed), steps, num_envs)
    done = np.zeros(num_envs, dtype=bool)
    episodes_done = 0
    for step_actions in actions:
        obs, rewards, terminated, truncated, info = vector.step(step_actions)
        single_obs, single_infos = [], []
        for index, env in enumerate(singles):
            if done[index]:  # NEXT_STEP autoreset: the action is ignored
                o, i = env.reset()
                r, term = 0.0, False
            else:
                o, r, term, trunc, i = env.step(int(step_actions[index]))
                assert not trunc
            np.testing.assert_allclose(rewards[index], r, **FLOAT_TOLERANCE)
            assert terminated[index] == term
            done[index] = term
            single_obs.append(o)
            single_infos.append(i)
        np.testing.assert_array_equal(obs, np.stack(single_obs))
        assert not truncated.any()
        assert_info_close(info, single_infos)
        np.testing.assert_array_equal(
            vector.compositions, np.stack([env.composition for env in singles])
        )
        episodes_done += int(terminated.all())
    assert episodes_done == 2


@pytest.mark.parametrize(
    ("env_kwargs", "options"),
    [
        ({}, None),  # C major, random one-token primers
        ({"key": "F# minor", "primer": [14, 0, 16]}, None),
        ({"key": "Bb major"}, {"primer": [2, 0, 0, 1]}),
        (
            {"composition_length": 12, "steps_per_bar": 4, "primer_context": 2},
            {"key": ["C major", "F# minor", "Bb major"]},
        ),
        ({"reward_mode": "music_theory_basic_plus_variety", "reward_scaler": 0.5}, None),
    ],
    ids=["c-major-random", "f#-minor-tokens", "bb-major-option", "per-env-keys", "mode"],
)
def test_parity_with_single_envs(rnn, env_kwargs, options):
    assert_parity(rnn, 3, seed=11, env_kwargs=env_kwargs, options=options)


def test_parity_with_per_env_primers_of_different_lengths(rnn, midi_primer):
    primers = [None, [14], [2, 0, 0, 5, 1, 0, 0, 0, 0, 0, 9], midi_primer]
    keys = ["C major", "Bb major", "F# minor", "D major"]
    options = {"primer": primers, "key": keys}
    assert_parity(rnn, 4, seed=3, env_kwargs={"composition_length": 16}, options=options)


def test_parity_with_custom_term_and_weights(rnn):
    def prefers_c(ctx):
        return (ctx.pitch % 12 == 0).astype(float)

    kwargs = {
        "composition_length": 10,
        "reward_terms": {"prefers_c": prefers_c},
        "reward_weights": {"autocorrelation": 0.0, "key_distribute_prob": 2.0},
    }
    assert_parity(rnn, 2, seed=5, env_kwargs=kwargs)


def test_make_vec_default_is_native_and_sync_async_wrap_single_envs(rnn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        native = gym.make_vec(ENV_ID, num_envs=3, reward_rnn=rnn, key="A minor")
    assert isinstance(native, MelodyCompositionVectorEnv)
    assert native.num_envs == 3 and native.key.name == "A minor"
    assert native.single_action_space == gym.spaces.Discrete(38)
    assert native.action_space == gym.spaces.MultiDiscrete([38] * 3)
    assert native.single_observation_space == gym.spaces.MultiBinary(1620)
    # Gymnasium batches MultiBinary(D) as an int8 Box, as SyncVectorEnv's space is
    assert native.observation_space == gym.spaces.Box(0, 1, (3, 1620), np.int8)
    assert native.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    assert native.spec.id == ENV_ID
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", reward_rnn=rnn)
    assert isinstance(sync, gym.vector.SyncVectorEnv)
    assert isinstance(sync.envs[0].unwrapped, MelodyCompositionEnv)
    assert sync.single_observation_space == native.single_observation_space
    assert sync.observation_space == gym.spaces.Box(0, 1, (2, 1620), np.int8)
    asynchronous = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="async", reward_rnn=rnn)
    try:
        assert isinstance(asynchronous, gym.vector.AsyncVectorEnv)
    finally:
        asynchronous.close()
    for envs in (native, sync):
        envs.close()


def test_info_has_the_structure_of_sync_vector_env(rnn):
    """Same keys, masks, dtypes and shapes as SyncVectorEnv over the single envs."""
    kwargs = {"reward_rnn": rnn, "composition_length": 4, "key": "E minor"}
    native = gym.make_vec(ENV_ID, num_envs=2, **kwargs)
    sync = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync", **kwargs)

    def structure(info):
        return {
            name: structure(value) if isinstance(value, dict) else (value.dtype, value.shape)
            for name, value in info.items()
        }

    results = [envs.reset(seed=1) for envs in (native, sync)]
    assert structure(results[0][1]) == structure(results[1][1])
    for action in [[16, 18], [0, 1], [19, 19], [16, 0], [2, 2], [3, 3]]:  # includes autoreset
        results = [envs.step(np.array(action)) for envs in (native, sync)]
        assert structure(results[0][4]) == structure(results[1][4])
        for got, expected in zip(results[0][:4], results[1][:4], strict=True):
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_allclose(got, expected, **FLOAT_TOLERANCE)


def _arrays(tree):
    """Every array of a step's result, info included, but the ``_name`` masks (one shared
    all-true array: every env has every entry)."""
    if isinstance(tree, dict):
        values = [value for name, value in tree.items() if not name.startswith("_")]
        return [array for value in values for array in _arrays(value)]
    if isinstance(tree, tuple):
        return [array for value in tree for array in _arrays(value)]
    return [tree] if isinstance(tree, np.ndarray) else []


@pytest.mark.parametrize("reward_mode", ["music_theory_all", "music_theory_basic", "scale"])
def test_returned_arrays_are_the_callers(rnn, reward_mode):
    """Rewards and info arrays are not copied from the env's state (see RewardBreakdown), so
    scribbling over everything a step returns must change nothing that follows, and no two
    returned arrays may share memory."""
    kwargs = {"reward_rnn": rnn, "composition_length": 12, "reward_mode": reward_mode}
    scribbled, clean = (MelodyCompositionVectorEnv(3, **kwargs) for _ in range(2))
    actions = melodic_actions(np.random.default_rng(5), 30, 3)  # two episodes and a bit
    scribbled.reset(seed=4)
    clean.reset(seed=4)
    for step_actions in actions:
        result = scribbled.step(step_actions)
        expected = clean.step(step_actions)
        for got, want in zip(_arrays(result), _arrays(expected), strict=True):
            np.testing.assert_array_equal(got, want)
        arrays = [array for array in _arrays(result) if array.dtype != object]
        for index, array in enumerate(arrays):
            for other in arrays[index + 1 :]:
                assert not np.shares_memory(array, other)
        for array in arrays:
            array[...] = 7 if array.dtype != bool else ~array


def test_gymnasium_vector_wrappers(rnn):
    envs = gym.make_vec(ENV_ID, num_envs=2, reward_rnn=rnn, composition_length=8)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    envs = gym.wrappers.vector.TransformObservation(envs, lambda obs: obs * 2.0)
    envs = gym.wrappers.vector.DictInfoToList(envs)
    obs, infos = envs.reset(seed=0)
    assert isinstance(infos, list) and infos[0]["key"] == "C major"
    returns = np.zeros(2)
    for _ in range(8):
        obs, rewards, terminated, _, infos = envs.step(envs.action_space.sample())
        assert obs.max() == 2.0
        returns += rewards
    assert terminated.all()
    for index in range(2):
        np.testing.assert_allclose(infos[index]["episode"]["r"], returns[index], rtol=1e-6)
        assert infos[index]["episode"]["l"] == 8


def test_seeding_is_per_env_and_deterministic(rnn):
    def trajectory(seed, num_envs=4, steps=40):
        envs = MelodyCompositionVectorEnv(num_envs, reward_rnn=rnn, composition_length=16)
        obs, info = envs.reset(seed=seed)
        trace = [obs, info["primer"]]
        actions = np.random.default_rng(0).integers(0, 38, size=(steps, num_envs))
        for step_actions in actions:
            trace += list(envs.step(step_actions)[:4])
        return trace

    first, second, other = trajectory(7), trajectory(7), trajectory(8)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))

    envs = MelodyCompositionVectorEnv(3, reward_rnn=rnn)
    _, info = envs.reset(seed=[5, None, 9])
    single = MelodyCompositionEnv(reward_rnn=rnn)
    assert info["primer"][0, 0] == single.reset(seed=5)[1]["primer"][0]
    assert info["primer"][2, 0] == single.reset(seed=9)[1]["primer"][0]
    # seed=s is seed=[s, s+1, ...]; no seed continues each env's generator.
    _, seeded = envs.reset(seed=20)
    _, listed = envs.reset(seed=[20, 21, 22])
    np.testing.assert_array_equal(seeded["primer"], listed["primer"])
    again = [envs.reset()[1]["primer"] for _ in range(2)]
    envs.reset(seed=20)
    np.testing.assert_array_equal(again, [envs.reset()[1]["primer"] for _ in range(2)])


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.array([0, 38]), r"invalid action 38 for env 1.*\[0, 37\]"),
        (np.array([-1, 2]), r"invalid action -1 for env 0.*\[0, 37\]"),
        (np.array([0, 1, 2]), r"shape \(2,\).*\(3,\)"),
        (np.array(5), r"shape \(2,\)"),
        (np.array([0.0, 1.0]), r"integer tokens in \[0, 37\].*float64"),
        (np.array([True, False]), r"integer tokens in \[0, 37\].*bool"),
    ],
)
def test_invalid_actions_name_the_value_and_the_range(rnn, actions, match):
    envs = MelodyCompositionVectorEnv(2, reward_rnn=rnn)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        envs.step(actions)


def test_bad_arguments_and_options(rnn):
    with pytest.raises(ValueError, match="num_envs"):
        MelodyCompositionVectorEnv(0, reward_rnn=rnn)
    with pytest.raises(ValueError, match="render_mode"):
        MelodyCompositionVectorEnv(2, reward_rnn=rnn, render_mode="human")
    envs = MelodyCompositionVectorEnv(2, reward_rnn=rnn)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.array([0, 0]))
    with pytest.raises(ValueError, match="one per env"):
        envs.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="one entry per env"):
        envs.reset(options={"key": ["C major", "D major", "E major"]})
    with pytest.raises(ValueError, match="unknown key"):
        envs.reset(options={"key": "H major"})
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([True, False])})
    with pytest.raises(ValueError, match="unknown reset options"):
        envs.reset(options={"tempo": 90})
    with pytest.raises(ValueError, match="primer tokens"):
        envs.reset(options={"primer": [[14], [40]]})


def test_render_and_export_match_the_single_env(rnn, tmp_path):
    for mode in ("ansi", "rgb_array"):
        envs = MelodyCompositionVectorEnv(2, reward_rnn=rnn, render_mode=mode, key="D minor")
        singles = [
            MelodyCompositionEnv(reward_rnn=rnn, render_mode=mode, key="D minor") for _ in "ab"
        ]
        envs.reset(seed=4)
        for index, env in enumerate(singles):
            env.reset(seed=4 + index)
        for action in ([16, 0], [17, 1], [0, 21]):
            envs.step(np.array(action))
            for index, env in enumerate(singles):
                env.step(action[index])
        frames = envs.render()
        assert isinstance(frames, tuple) and len(frames) == 2
        for frame, env in zip(frames, singles, strict=True):
            np.testing.assert_array_equal(frame, env.render())
    assert envs.compositions.tolist() == [[16, 17, 0], [0, 1, 21]]
    assert envs.episode_keys == ("D minor", "D minor")
    envs.to_midi(1, tmp_path / "one.mid")
    notes = pretty_midi.PrettyMIDI(str(tmp_path / "one.mid")).instruments[0].notes
    assert [note.pitch for note in notes] == [21 + 46]
    with warnings.catch_warnings(record=True):
        assert MelodyCompositionVectorEnv(1, reward_rnn=rnn).render() is None


def test_pickle_round_trip(rnn):
    envs = MelodyCompositionVectorEnv(2, reward_rnn=rnn, key="E minor")
    envs.reset(seed=0)
    envs.step(np.array([16, 18]))
    clone = pickle.loads(pickle.dumps(envs))
    for _ in range(5):
        a, b = envs.step(np.array([18, 19])), clone.step(np.array([18, 19]))
        for x, y in zip(a[:4], b[:4], strict=True):
            np.testing.assert_array_equal(x, y)


def test_package_exports():
    assert melody_env.MelodyCompositionVectorEnv is MelodyCompositionVectorEnv
    assert gym.spec(ENV_ID).vector_entry_point.endswith(":MelodyCompositionVectorEnv")


def test_copy_false_returns_the_same_observations_in_one_reused_buffer(rnn):
    copying = gym.make_vec(ENV_ID, num_envs=4, reward_rnn=rnn)
    reusing = gym.make_vec(ENV_ID, num_envs=4, copy=False, reward_rnn=rnn)
    assert copying.copy and not reusing.copy
    actions = np.random.default_rng(3).integers(0, 38, size=(40, 4))  # autoresets included
    obs, _ = copying.reset(seed=5)
    buffer, _ = reusing.reset(seed=5)
    np.testing.assert_array_equal(buffer, obs)
    kept, kept_values = obs, obs.copy()
    for step_actions in actions:
        obs, rewards, terminated, _, _ = copying.step(step_actions)
        shared, shared_rewards, shared_terminated, _, _ = reusing.step(step_actions)
        assert shared is buffer and shared.dtype == np.int8  # overwritten in place
        assert obs is not kept and obs.dtype == np.int8  # a new array each step
        np.testing.assert_array_equal(kept, kept_values)  # which the env never touches again
        np.testing.assert_array_equal(shared, obs)
        np.testing.assert_array_equal(shared_rewards, rewards)
        np.testing.assert_array_equal(shared_terminated, terminated)
        kept, kept_values = obs, obs.copy()
    assert reusing.observation_space.contains(buffer)


def test_reset_info_lists_primers_of_different_lengths(rnn):
    envs = MelodyCompositionVectorEnv(3, reward_rnn=rnn)
    _, info = envs.reset(seed=0, options={"primer": [[14], [14, 0, 16], [2, 3]]})
    assert info["primer"].dtype == object and [p.tolist() for p in info["primer"]] == [
        [14],
        [14, 0, 16],
        [2, 3],
    ]
    info["primer"][1][0] = 5  # the info is the caller's copy
    assert (
        envs.reset(seed=0, options={"primer": [[14], [14, 0, 16], [2, 3]]})[1]["primer"][1][0] == 14
    )
    _, info = envs.reset(seed=0, options={"primer": [[14, 0], [15, 0], [16, 1]]})
    assert info["primer"].dtype == np.int64 and info["primer"].shape == (3, 2)
