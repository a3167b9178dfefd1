"""The one override parser (``--set a.b=VALUE``) and the one ``from_dict`` of the config
dataclasses.

Every config of the agents is a frozen dataclass, possibly nested (``TrainConfig.env`` is an
:class:`~melody_env.EnvConfig`). :func:`apply_overrides` applies ``"a.b=VALUE"`` strings to one,
each value read by the annotation of the field it sets; :func:`config_from_dict` rebuilds one from
the JSON of a checkpoint or a summary, refusing unknown keys.

>>> from melody_env import EnvConfig
>>> config = apply_overrides(EnvConfig(), ["key=G major", "composition_length=1.6e1"])
>>> config.key, config.composition_length
('G major', 16)
>>> apply_overrides(EnvConfig(), ["reward_weights.key=0.5"]).reward_weights
{'key': 0.5}
>>> config_from_dict(EnvConfig, {"primer": [21, 0]}).primer
(21, 0)
>>> try:
...     apply_overrides(EnvConfig(), ["colour=red"])
... except ValueError as error:
...     print(str(error)[:64])
unknown config field 'colour' in --set 'colour=red'; allowed: ['
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

_OVERRIDE_FORM = "NAME=VALUE"


class _Mismatch(Exception):
    """A value that does not fit an annotation (turned into one ``ValueError`` line)."""


def apply_overrides(config: Any, overrides: Sequence[str]) -> Any:
    """``config`` with each ``"a.b=VALUE"`` of ``overrides`` applied (a new dataclass).

    ``a.b`` is a path of field names (``-`` read as ``_``) through nested dataclasses; in a dict
    field (e.g. SB3 ``hyperparams``) the last part is a key of the dict, added or replaced.
    ``VALUE`` is read as JSON if it parses, else as the string itself, and must fit the
    annotation of the field: ``int`` takes integral numbers (``1e3``), ``float`` any number,
    ``bool`` ``true``/``false``, ``str`` the text itself (JSON strings unquoted), ``X | None``
    also ``null``, dicts and lists their JSON, a nested dataclass a JSON object of its fields.
    Each dataclass is rebuilt once with all its changes (``dataclasses.replace``), so its
    ``__post_init__`` checks see the combination.

    Raises:
        ValueError: one line naming the bad item: no ``=``, an unknown key (with the allowed
            ones), a value that does not fit the field's type, or the config's own check.
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise ValueError(f"apply_overrides needs a dataclass instance, got {config!r:.80}")
    if isinstance(overrides, str):
        raise ValueError(f"overrides must be a list of {_OVERRIDE_FORM} strings, got {overrides!r}")
    changes: dict[str, Any] = {}
    for item in overrides:
        path, separator, text = str(item).partition("=")
        if not separator or not path.strip():
            raise ValueError(f"--set expects {_OVERRIDE_FORM}, got {item!r}")
        parts = path.strip().split(".")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        _record(config, parts, value, text, item, changes)
    return _rebuild(config, changes)


def config_from_dict(cls: type, data: Any, *, source: str = "") -> Any:
    """A ``cls`` dataclass from a dict of its fields (the output of ``dataclasses.asdict``).

    Nested dataclass fields are rebuilt from their dicts and JSON lists become tuples where the
    annotation is a tuple; ``cls``'s own ``__post_init__`` checks the values.

    Args:
        cls: the dataclass.
        data: its fields by name; absent ones keep their defaults.
        source: where ``data`` came from (a file), named in the errors.

    Raises:
        ValueError: ``data`` is not a dict, or has keys that are not fields of ``cls`` (named,
            with the known ones).
    """
    where = f" in {source}" if source else ""
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__}{where} must be a JSON object of fields, got {data!r:.80}")
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}{where}; known: {sorted(known)}")
    hints = _hints(cls)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        nested = _dataclass_of(hint)
        if nested is not None and isinstance(value, Mapping):
            value = config_from_dict(nested, value, source=source)
        elif isinstance(value, list) and _tuple_of(hint):
            value = tuple(value)
        values[name] = value
    return cls(**values)


def check_stored_env(env: Any, stored_in: str) -> None:
    """Refuse an agent config's ``env`` that is not a :class:`melody_env.EnvConfig` or whose
    reward RNN a stored config cannot name (a loaded ``NoteRNN`` rather than a path).

    Args:
        stored_in: where the config is written, for the message (``"checkpoints"``, ...).

    Raises:
        ValueError: naming the value and what is allowed.
    """
    from melody_env.envs.env_config import EnvConfig

    if not isinstance(env, EnvConfig):
        raise ValueError(f"env must be an EnvConfig, got {env!r:.80}")
    if not isinstance(env.reward_rnn, (str, type(None))):
        value = " ".join(repr(env.reward_rnn).split())[:60]  # a module's repr spans lines
        raise ValueError(
            "env.reward_rnn must be a .safetensors path or None (a config is stored in "
            f"{stored_in}), got {value}"
        )


def nest_fields(
    data: Any, into: str, names: Sequence[str], defaults: Mapping[str, Any] | None = None
) -> Any:
    """``data`` (a config's dict) with its top-level ``names`` moved into its ``into`` dict, and
    ``defaults`` for the keys that dict lacks: how a config stored before those fields were
    nested (``{"key": "G major"}`` where ``{"env": {"key": "G major"}}`` is now) still loads.
    Anything that is not a dict comes back unchanged.

    >>> nest_fields({"seed": 1, "key": "G major"}, "env", ["key", "reward_rnn"])
    {'seed': 1, 'env': {'key': 'G major'}}
    >>> nest_fields({"env": {"key": "D minor"}}, "env", ["key"], {"reward_mode": "x"})
    {'env': {'reward_mode': 'x', 'key': 'D minor'}}

    Raises:
        ValueError: a name given at the top level when ``into`` is not a dict, or in both.
    """
    if not isinstance(data, Mapping):
        return data
    moved = {name: data[name] for name in names if name in data}
    nested = data.get(into, {})
    if not isinstance(nested, Mapping):
        if moved:
            raise ValueError(
                f"{sorted(moved)} belong in {into}; give them there, not beside {into}"
            )
        return data
    both = sorted(set(moved) & set(nested))
    if both:
        raise ValueError(f"{both} given both at the top level and in {into}; give them once")
    rest = {name: value for name, value in data.items() if name not in moved and name != into}
    return {**rest, into: {**(defaults or {}), **moved, **nested}}


def _hints(cls: type) -> dict[str, Any]:
    """The field annotations of ``cls``, resolved; unresolvable ones stay strings (unchecked)."""
    try:
        return typing.get_type_hints(cls)
    except NameError:
        return {f.name: f.type for f in dataclasses.fields(cls)}


def _record(config: Any, parts: list[str], value: Any, text: str, item: str, changes: dict):
    """Check one override's path and value; store it in the nested ``changes``."""
    node, node_changes = config, changes
    hints = _hints(type(config))
    for depth, raw_part in enumerate(parts):
        part = raw_part.strip().replace("-", "_")
        names = [f.name for f in dataclasses.fields(node) if f.init]
        if part not in names:
            prefix = ".".join(parts[:depth])
            raise ValueError(
                f"unknown config field {'.'.join([*parts[:depth], part])!r} in --set {item!r}; "
                f"allowed: {_allowed(node, prefix)}"
            )
        hint = hints[part]
        current = getattr(node, part)
        rest = parts[depth + 1 :]
        if not rest:
            node_changes[part] = _fit(value, hint, text, item)
            return
        if dataclasses.is_dataclass(current):
            node, hints = current, _hints(type(current))
            node_changes = node_changes.setdefault(part, {})
            if not isinstance(node_changes, dict):  # the whole field was set before
                raise ValueError(f"--set {item!r} changes a field already set as a whole")
            continue
        if _dict_field(hint, current) and len(rest) == 1:
            value_hint = _dict_value_hint(hint)
            entry = node_changes.setdefault(part, _DictChanges())
            entry[rest[0].strip()] = _fit(value, value_hint, text, item)
            return
        raise ValueError(
            f"--set {item!r}: {'.'.join(parts[: depth + 1])} is not a nested config or a dict"
        )


class _DictChanges(dict):
    """Keys to add to or replace in a dict field (not the new dict itself)."""


def _rebuild(config: Any, changes: dict) -> Any:
    if not changes:
        return config
    values = {}
    for name, change in changes.items():
        current = getattr(config, name)
        if isinstance(change, _DictChanges):
            values[name] = {**(current or {}), **change}
        elif (
            isinstance(change, dict)
            and dataclasses.is_dataclass(current)
            and not (dataclasses.is_dataclass(change))
        ):
            values[name] = _rebuild(current, change)
        else:
            values[name] = change
    return dataclasses.replace(config, **values)


def _allowed(node: Any, prefix: str) -> list[str]:
    """The keys a ``--set`` may name at ``node``: its fields, nested ones as ``a.*``."""
    lead = f"{prefix}." if prefix else ""
    keys = []
    for f in dataclasses.fields(node):
        if f.init:
            nested = dataclasses.is_dataclass(getattr(node, f.name))
            keys.append(f"{lead}{f.name}{'.*' if nested else ''}")
    return sorted(keys)


def _fit(value: Any, hint: Any, text: str, item: str) -> Any:
    try:
        return _coerce(value, hint, text)
    except _Mismatch:
        raise ValueError(f"--set {item!r}: expected {_describe(hint)}, got {value!r:.80}") from None


def _coerce(value: Any, hint: Any, text: str) -> Any:
    """``value`` (JSON-decoded, else the raw ``text``) as the annotation ``hint`` wants it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for member in args:
            if member is not type(None) and member is not str:
                try:
                    return _coerce(value, member, text)
                except _Mismatch:
                    continue
        if str in args:  # the text itself, when no other type takes the value
            return value if isinstance(value, str) else text
        raise _Mismatch
    if hint is str:
        return value if isinstance(value, str) else text
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    nested = _dataclass_of(hint)
    if nested is not None:
        if isinstance(value, Mapping):
            return config_from_dict(nested, value)
        raise _Mismatch
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch
        value_hint = args[1] if len(args) == 2 else Any
        return {key: _coerce(entry, value_hint, json.dumps(entry)) for key, entry in value.items()}
    if hint in (dict, Mapping):
        if isinstance(value, Mapping):
            return dict(value)
        raise _Mismatch
    if origin in (tuple, list) or hint in (tuple, list):
        if not isinstance(value, list):
            raise _Mismatch
        element = args[0] if args else Any
        items = [_coerce(entry, element, json.dumps(entry)) for entry in value]
        return tuple(items) if tuple in (origin, hint) else items
    if isinstance(hint, type):
        if isinstance(value, hint):
            return value
        raise _Mismatch
    return value  # an annotation we cannot check (a Callable, a Protocol): the config checks


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_describe(member) for member in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def _dataclass_of(hint: Any) -> type | None:
    """The dataclass an annotation names (``X`` or ``X | None``), else ``None``."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(hint) if m is not type(None)]
        if len(members) == 1:
            return _dataclass_of(members[0])
    return None


def _tuple_of(hint: Any) -> bool:
    """Whether ``hint`` is a tuple type (or a union with one)."""
    if hint is tuple or typing.get_origin(hint) is tuple:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_tuple_of(member) for member in typing.get_args(hint))
    return False


def _dict_field(hint: Any, current: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_dict_field(member, current) for member in typing.get_args(hint))
    if hint in (dict, Mapping) or isinstance(current, Mapping):
        return True
    return origin is not None and isinstance(origin, type) and issubclass(origin, Mapping)


def _dict_value_hint(hint: Any) -> Any:
    """The value annotation of a dict field (``dict[str, float] | None`` -> ``float``)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(hint):
            if member is not type(None) and _dict_field(member, None):
                return _dict_value_hint(member)
        return Any
    args = typing.get_args(hint)
    return args[1] if len(args) == 2 else Any
