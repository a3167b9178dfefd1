"""SB3 model zips load without unpickling: planted payloads never run."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch

import melody_env
from melody_env.evaluation.policies import load_policy, load_sb3
from melody_env.io import sb3_zip

pytest.importorskip("stable_baselines3")
from stable_baselines3 import DQN, PPO


class Payload:
    """Unpickling this creates ``marker``: proof that code in the zip ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def pickled(marker) -> str:
    return base64.b64encode(pickle.dumps(Payload(str(marker)))).decode()


@pytest.fixture(scope="module")
def model_zips(tmp_path_factory, tiny_rnn_path):
    folder = tmp_path_factory.mktemp("sb3")
    env = gym.make(melody_env.ENV_ID, composition_length=8, reward_rnn=tiny_rnn_path)
    paths = {}
    for algo in (DQN, PPO):
        model = algo("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=0, verbose=0)
        paths[algo.__name__] = folder / f"{algo.__name__}.zip"
        model.save(paths[algo.__name__])
    obs, _ = env.reset(seed=0)
    return paths, obs


def rewrite_data(source, target, change) -> None:
    with zipfile.ZipFile(source) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    change(data)
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


def test_a_model_loads_and_predicts_as_sb3_loads_it(model_zips):
    paths, obs = model_zips
    for name, algo in (("DQN", DQN), ("PPO", PPO)):
        ours = sb3_zip.load_sb3_model(paths[name], algo)
        theirs = algo.load(paths[name], device="cpu")
        batch = np.stack([obs] * 3)
        assert np.array_equal(
            ours.predict(batch, deterministic=True)[0], theirs.predict(batch, deterministic=True)[0]
        )
        for key, value in theirs.policy.state_dict().items():
            assert torch.equal(value, ours.policy.state_dict()[key])
    assert isinstance(load_policy(f"sb3-dqn:{paths['DQN']}"), DQN)


@pytest.mark.parametrize("key", ["lr_schedule", "policy_class", "observation_space", "_last_obs"])
def test_a_payload_in_a_replaced_entry_never_runs(model_zips, tmp_path, key):
    paths, _ = model_zips
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.zip"
    rewrite_data(
        paths["DQN"],
        hostile,
        lambda data: data.update({key: {**(data[key] or {}), ":serialized:": pickled(marker)}}),
    )
    load_sb3(hostile, "sb3-dqn")  # the rebuilt entry is used; the pickle is never read
    assert not marker.exists()


def test_a_payload_in_an_unknown_entry_is_refused_and_never_runs(model_zips, tmp_path):
    paths, _ = model_zips
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.zip"
    rewrite_data(
        paths["DQN"],
        hostile,
        lambda data: data.update(
            extra={":type:": "<class 'os.PathLike'>", ":serialized:": pickled(marker)}
        ),
    )
    with pytest.raises(ValueError, match=r"'extra' is a pickled os\.PathLike; melody-rl does not"):
        load_policy(str(hostile))
    assert not marker.exists()


def test_a_pickled_policy_kwarg_is_refused(model_zips, tmp_path):
    paths, _ = model_zips
    marker = tmp_path / "ran"
    hostile = tmp_path / "hostile.zip"
    kwargs = {
        ":type:": "<class 'dict'>",
        ":serialized:": pickled(marker),
        "net_arch": [8],
        "features_extractor_class": "<class 'evil.Extractor'>",
    }
    rewrite_data(paths["DQN"], hostile, lambda data: data.update(policy_kwargs=kwargs))
    with pytest.raises(ValueError, match="features_extractor_class is a pickled object"):
        load_sb3(hostile, "sb3-dqn")
    assert not marker.exists()


@pytest.mark.parametrize("net_arch", [[10**9], [8] * 100, ["8"], [0]])
def test_network_sizes_are_bounded_before_anything_is_built(model_zips, tmp_path, net_arch):
    paths, _ = model_zips
    hostile = tmp_path / "big.zip"
    rewrite_data(
        paths["DQN"], hostile, lambda data: data.update(policy_kwargs={"net_arch": net_arch})
    )
    with pytest.raises(ValueError, match="net_arch"):
        load_sb3(hostile, "sb3-dqn")


def test_a_ppo_zip_named_as_dqn_gets_a_clear_error(model_zips):
    paths, _ = model_zips
    with pytest.raises(ValueError, match=r"holds a PPO model, not DQN; load it as sb3-ppo:"):
        load_policy(f"sb3-dqn:{paths['PPO']}")


def test_zips_too_large_unpacked_are_refused(model_zips, monkeypatch):
    paths, _ = model_zips
    monkeypatch.setattr(sb3_zip, "MAX_ZIP_BYTES", 1000)
    with pytest.raises(ValueError, match="more than the 1,000 allowed"):
        load_sb3(paths["DQN"], "sb3-dqn")


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04garbage"])
def test_not_a_zip(tmp_path, content):
    path = tmp_path / "m.zip"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not a readable zip"):
        load_sb3(path, "sb3-dqn")
