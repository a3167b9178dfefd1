"""``EnvConfig``: the one list of the env's arguments, shared by the single env, the vector env
and the evaluation."""

from __future__ import annotations

import importlib
import json

import gymnasium as gym
import numpy as np
import pytest

import melody_env
from melody_env import EnvConfig, MelodyCompositionEnv, MelodyCompositionVectorEnv
from melody_env.models import NoteRNN

ENV_ID = "melody_env/MelodyComposition-v0"
# The module (melody_env.evaluation's attribute ``evaluate`` is the function).
evaluate_module = importlib.import_module("melody_env.evaluation.evaluate")


def test_defaults_are_the_papers():
    config = EnvConfig()
    assert config.key == "C major" and config.primer is None
    assert (config.composition_length, config.steps_per_bar, config.primer_context) == (32, 16, 8)
    assert (config.reward_mode, config.reward_scaler, config.qpm) == ("music_theory_all", 2.0, 80.0)
    assert config.reward_terms is None and config.reward_weights is None
    assert config.reward_rnn is None and config.render_mode is None


def test_values_are_kept_in_canonical_form(tmp_path):
    weights = {"key": 0.5}
    config = EnvConfig(
        key=melody_env.Key.from_name("g major"),
        primer=np.array([21, 0]),
        reward_weights=weights,
        reward_rnn=tmp_path / "rnn.safetensors",
    )
    assert config.key == "G major" and config.primer == (21, 0)
    assert type(config.primer[0]) is int
    assert config.reward_rnn == str(tmp_path / "rnn.safetensors")
    weights["key"] = 9.0  # the config holds its own copy
    assert config.reward_weights == {"key": 0.5}
    assert EnvConfig(key="ANY").key == "any"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"composition_length": 0}, "composition_length must be an integer >= 1, got 0"),
        ({"composition_length": 10_001}, "composition_length must be at most 10,000"),
        ({"steps_per_bar": 2.0}, "steps_per_bar must be an integer >= 1"),
        ({"primer_context": -1}, "primer_context must be an integer >= 0"),
        ({"primer_context": 1025}, "primer_context must be at most 1,024"),
        ({"key": "H major"}, "or 'any'"),
        ({"primer": []}, "non-empty"),
        ({"primer": [38]}, "primer tokens"),
        ({"reward_mode": "loud"}, "loud"),
        ({"reward_scaler": float("nan")}, "reward_scaler"),
        ({"reward_weights": {"nope": 1.0}}, "unknown reward term 'nope'"),
        ({"reward_terms": {"x": 3}}, "must be callable"),
        ({"reward_rnn": 3}, "reward_rnn must be a NoteRNN"),
        ({"render_mode": "human"}, "unknown render_mode 'human'"),
        ({"qpm": 0}, "qpm"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        EnvConfig(**arguments)
    assert "\n" not in str(error.value)


def test_missing_primer_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.mid"):
        EnvConfig(primer=str(tmp_path / "missing.mid"))


def test_dict_round_trip_through_json():
    config = EnvConfig(
        key="F# minor",
        primer=[14, 0, 16],
        composition_length=12,
        reward_weights={"autocorrelation": 0.0},
        reward_rnn="weights.safetensors",
        qpm=100.0,
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["primer"] == [14, 0, 16] and data["reward_rnn"] == "weights.safetensors"
    assert EnvConfig.from_dict(data) == config
    assert set(data) == set(EnvConfig.field_names())


def test_to_dict_refuses_what_json_cannot_hold(tiny_rnn):
    with pytest.raises(ValueError, match="cannot store a NoteRNN object"):
        EnvConfig(reward_rnn=tiny_rnn).to_dict()
    with pytest.raises(ValueError, match=r"reward_terms \['bonus'\]"):
        EnvConfig(reward_terms={"bonus": lambda context: 0.0}).to_dict()


def test_unknown_fields_are_named():
    with pytest.raises(ValueError, match=r"unknown EnvConfig fields \['colour'\]; known"):
        EnvConfig.from_dict({"colour": "red"})
    with pytest.raises(ValueError, match=r"unknown env argument\(s\) \['colour'\]; allowed"):
        EnvConfig().replace(colour="red")
    with pytest.raises(ValueError, match=r"unknown env argument\(s\) \['colour'\]"):
        gym.make(ENV_ID, colour="red")


def test_both_envs_take_their_arguments_from_it(tiny_rnn):
    config = EnvConfig(key="D minor", composition_length=8, primer_context=2, reward_rnn=tiny_rnn)
    single = gym.make(ENV_ID, **config.env_kwargs()).unwrapped
    assert isinstance(single, MelodyCompositionEnv) and single.config == config
    vector = gym.make_vec(ENV_ID, num_envs=2, **config.env_kwargs())
    assert isinstance(vector, MelodyCompositionVectorEnv) and vector.config == config
    # config= plus keywords: the keywords override its fields.
    overridden = MelodyCompositionEnv(config, key="E minor")
    assert overridden.config == config.replace(key="E minor")
    assert overridden.layout.size == single.layout.size
    assert (
        MelodyCompositionVectorEnv(2, config=config, composition_length=4).config.key == "D minor"
    )
    obs, info = single.reset(seed=0)
    assert obs.shape == (38 * (1 + 8 + 2) + 8 + 16 + 14,) and info["key"] == "D minor"


def test_the_envs_defaults_are_the_configs(tiny_rnn):
    env = MelodyCompositionEnv(reward_rnn=tiny_rnn)
    assert env.config == EnvConfig(reward_rnn=tiny_rnn)
    with pytest.raises(ValueError, match="config must be an EnvConfig"):
        MelodyCompositionEnv({"key": "C major"})


def test_evaluation_env_kwargs_are_the_configs_fields():
    """The evaluation's ``env_kwargs`` are the config's fields less the ones it sets itself."""
    assert set(evaluate_module.ENV_KWARGS) | set(evaluate_module.EVALUATION_OWN_ARGUMENTS) == set(
        EnvConfig.field_names()
    )
    with pytest.raises(ValueError, match=r"unknown env_kwargs \['key'\]"):
        evaluate_module.evaluate(object.__new__(_Predicts), env_kwargs={"key": "G major"})


def test_evaluation_checks_env_kwargs_with_the_config(tiny_rnn):
    with pytest.raises(ValueError, match="composition_length must be an integer >= 1"):
        evaluate_module.evaluate(
            _Predicts(), n=2, reward_rnn=tiny_rnn, env_kwargs={"composition_length": 0}
        )


class _Predicts:
    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.zeros(len(observation), np.int64), None


def test_note_rnn_is_not_copied(tiny_rnn):
    assert isinstance(tiny_rnn, NoteRNN)
    assert EnvConfig(reward_rnn=tiny_rnn).reward_rnn is tiny_rnn
