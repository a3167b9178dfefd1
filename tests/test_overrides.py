"""The one override parser (``--set a.b=VALUE``) and ``config_from_dict``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import pytest

from agents.baselines.config import BaselineConfig
from agents.overrides import apply_overrides, config_from_dict
from melody_env import EnvConfig


@dataclass(frozen=True)
class Inner:
    rate: float = 0.1
    name: str | None = None
    sizes: tuple[int, ...] = (4,)

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError(f"rate must be >= 0, got {self.rate!r}")


@dataclass(frozen=True)
class Outer:
    steps: int = 10
    flag: bool = False
    final_rate: float | None = None
    inner: Inner = field(default_factory=Inner)
    extra: dict = field(default_factory=dict)
    weights: dict[str, float] | None = None
    low: int = 0
    high: int = 5

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low {self.low} > high {self.high}")


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("steps=7", {"steps": 7}),
        ("steps=1e3", {"steps": 1000}),  # integral JSON numbers fit an int
        ("flag=true", {"flag": True}),
        ("final_rate=null", {"final_rate": None}),
        ("final_rate=2", {"final_rate": 2.0}),
        ("final-rate=0.5", {"final_rate": 0.5}),  # dashes read as underscores
        ("inner.rate=3", {"inner": Inner(rate=3.0)}),
        ("inner.name=G major", {"inner": Inner(name="G major")}),
        ('inner.name="12"', {"inner": Inner(name="12")}),  # a JSON string, unquoted
        ("inner.name=12", {"inner": Inner(name="12")}),  # str field: the text itself
        ("inner.sizes=[1, 2]", {"inner": Inner(sizes=(1, 2))}),
        ('inner={"rate": 0.5}', {"inner": Inner(rate=0.5)}),
        ('extra.policy_kwargs={"net_arch": [8]}', {"extra": {"policy_kwargs": {"net_arch": [8]}}}),
        ("extra.policy=MlpPolicy", {"extra": {"policy": "MlpPolicy"}}),
        ("weights.key=1", {"weights": {"key": 1.0}}),
    ],
)
def test_each_value_is_read_by_its_fields_annotation(item, expected):
    assert apply_overrides(Outer(), [item]) == Outer(**expected)


def test_changes_to_one_dataclass_are_applied_together():
    """``low=7`` alone breaks ``low <= high``; with ``high=9`` in the same call it does not."""
    assert apply_overrides(Outer(), ["low=7", "high=9"]) == Outer(low=7, high=9)
    config = apply_overrides(Outer(), ["inner.rate=1", "inner.name=x", "extra.a=1", "extra.b=2"])
    assert config.inner == Inner(rate=1.0, name="x") and config.extra == {"a": 1, "b": 2}
    assert apply_overrides(Outer(), []) == Outer()


def test_dict_fields_keep_their_other_keys():
    config = Outer(extra={"gamma": 0.9, "n": 1})
    assert apply_overrides(config, ["extra.n=2"]).extra == {"gamma": 0.9, "n": 2}
    assert config.extra == {"gamma": 0.9, "n": 1}  # the original is left alone


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("steps", r"--set expects NAME=VALUE, got 'steps'"),
        ("=3", r"--set expects NAME=VALUE"),
        ("stepz=3", r"unknown config field 'stepz' in --set 'stepz=3'; allowed: \[.*'inner\.\*'"),
        ("inner.rat=3", r"unknown config field 'inner\.rat'.*allowed: \['inner\.name', "),
        ("steps=2.5", r"--set 'steps=2\.5': expected int, got 2\.5"),
        ("steps=true", r"expected int, got True"),
        ("flag=1", r"expected bool, got 1"),
        ("final_rate=fast", r"expected float or null, got 'fast'"),
        ("inner.sizes=[1.5]", r"expected tuple"),
        ("inner.rate=-1", r"rate must be >= 0, got -1\.0"),  # the dataclass's own check
        ("low=9", r"low 9 > high 5"),
        ("steps.x=1", r"steps is not a nested config or a dict"),
        ('inner={"rat": 1}', r"unknown Inner fields \['rat'\]"),
    ],
)
def test_bad_items_are_refused_in_one_line(item, message):
    with pytest.raises(ValueError, match=message) as error:
        apply_overrides(Outer(), [item])
    assert "\n" not in str(error.value)


def test_refuses_what_is_not_a_list_of_items_on_a_dataclass():
    with pytest.raises(ValueError, match="list of NAME=VALUE"):
        apply_overrides(Outer(), "steps=3")
    with pytest.raises(ValueError, match="dataclass instance"):
        apply_overrides(Outer, ["steps=3"])


def test_env_config_overrides():
    config = apply_overrides(EnvConfig(), ["key=d minor", "primer=[14, 0]", "reward_rnn=null"])
    assert config == EnvConfig(key="D minor", primer=[14, 0])
    with pytest.raises(ValueError, match="composition_length must be an integer >= 1, got 0"):
        apply_overrides(EnvConfig(), ["composition_length=0"])


def test_config_from_dict_round_trips_nested_configs_through_json():
    config = Outer(steps=3, inner=Inner(rate=0.5, sizes=(1, 2)), extra={"a": [1]})
    data = json.loads(json.dumps(asdict(config)))
    assert config_from_dict(Outer, data) == config
    assert config_from_dict(Outer, {}) == Outer()
    baseline = BaselineConfig(algo="sb3-dqn", hyperparams={"gamma": 0.8})
    assert config_from_dict(BaselineConfig, json.loads(json.dumps(baseline.to_dict()))) == baseline


def test_config_from_dict_names_unknown_keys_and_the_source():
    with pytest.raises(ValueError, match=r"unknown Outer fields \['bogus'\] in run/x\.json; known"):
        config_from_dict(Outer, {"bogus": 1}, source="run/x.json")
    with pytest.raises(ValueError, match=r"unknown Inner fields \['rat'\]"):
        config_from_dict(Outer, {"inner": {"rat": 1}})
    with pytest.raises(ValueError, match="Outer must be a JSON object of fields, got 3"):
        config_from_dict(Outer, 3)
