"""Load Stable-Baselines3 model zips without unpickling anything.

An SB3 ``.zip`` holds a JSON ``data`` entry and ``.pth`` state dicts. SB3 reads the state dicts
with ``torch.load(weights_only=True)`` (no code runs), but every ``data`` value that was not
plain JSON (the policy class, the spaces, the schedules, ...) is a base64 cloudpickle that
``Algo.load`` unpickles, running whatever code it carries, unless ``custom_objects`` replaces
it. :func:`safe_custom_objects` reads ``data`` as JSON and builds a replacement for every
pickled entry from its plain-text fields (class names, space sizes), or refuses the zip; nothing
in it is ever unpickled. The entries replaced are only needed to train on (schedules, buffers,
the last observation): a model loaded this way predicts exactly as one loaded by SB3 itself.

Sizes are bounded before anything is built: the zip's total uncompressed size, the ``data``
entry, the network widths in ``policy_kwargs``, and the buffers the model allocates at load
(set to their smallest, as prediction never uses them).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

MAX_ZIP_BYTES = 256 * 1024 * 1024
"""Largest total uncompressed size of a model zip (the baselines' models are a few MB)."""
MAX_DATA_BYTES = 4 * 1024 * 1024
"""Largest ``data`` entry."""
MAX_LAYER_WIDTH = 4096
MAX_LAYERS = 16
MAX_SPACE_SIZE = 1_000_000

SAFE_ACTIVATIONS = ("ReLU", "Tanh", "ELU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Identity")
"""``torch.nn`` activations a pickled ``policy_kwargs`` may name (with Adam, AdamW, RMSprop
and SGD as ``optimizer_class`` and SB3's ``FlattenExtractor``)."""

SCHEDULE_KEYS = ("lr_schedule", "clip_range", "clip_range_vf", "exploration_schedule")
"""Training schedules: replaced by a constant (prediction never calls them)."""
CLEARED_KEYS = (
    "_last_obs",
    "_last_episode_starts",
    "_last_original_obs",
    "_last_lstm_states",
    "ep_info_buffer",
    "ep_success_buffer",
    "action_noise",
    "replay_buffer_class",
    "rollout_buffer_class",
    "env",
    "_vec_normalize_env",
)
"""Training-time state: replaced by ``None`` (the algorithm's default where it needs one)."""


class UnsafeZipError(ValueError):
    """An SB3 zip that cannot be loaded without unpickling (or is too large)."""


def _constant(value: float):
    def schedule(_progress_remaining: float) -> float:
        return value

    return schedule


def read_data(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON ``data`` entry of an SB3 zip, after checking the zip's sizes.

    Raises:
        UnsafeZipError: too large, or not an SB3 zip.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            total = sum(info.file_size for info in infos)
            if total > MAX_ZIP_BYTES:
                raise UnsafeZipError(
                    f"{path} unpacks to {total:,} bytes, more than the {MAX_ZIP_BYTES:,} allowed"
                )
            names = {info.filename: info for info in infos}
            if "data" not in names:
                raise UnsafeZipError(f"{path} is not a Stable-Baselines3 model zip (no 'data')")
            if names["data"].file_size > MAX_DATA_BYTES:
                raise UnsafeZipError(f"{path}: its 'data' entry is larger than {MAX_DATA_BYTES:,}")
            raw = archive.read("data")
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError) as error:
        raise UnsafeZipError(
            f"{path} is not a Stable-Baselines3 model zip (not a readable zip: {error})"
        ) from error
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise UnsafeZipError(
            f"{path} is not a Stable-Baselines3 model zip (its 'data' entry is not JSON: {error})"
        ) from error
    if not isinstance(data, dict):
        raise UnsafeZipError(
            f"{path} is not a Stable-Baselines3 model zip (its 'data' is not a JSON object)"
        )
    return data


def _is_pickled(value: Any) -> bool:
    return isinstance(value, dict) and ":serialized:" in value


def _type_name(value: dict) -> str:
    match = re.fullmatch(r"<class '([\w.]+)'>", str(value.get(":type:", "")))
    return match.group(1) if match else ""


def _class_name(value: dict) -> str:
    """The class a pickled class entry stands for, from the repr of its ``__init__``."""
    match = re.match(r"<function (\w+)\.__init__ ", str(value.get("__init__", "")))
    return match.group(1) if match else ""


def _policy_class(path: Path, value: dict, algorithm: type) -> type:
    name, module = _class_name(value), str(value.get("__module__", ""))
    for candidate in dict.fromkeys(algorithm.policy_aliases.values()):
        if candidate.__name__ == name and candidate.__module__ == module:
            return candidate
        for base in candidate.__mro__:  # e.g. DQN's MlpPolicy is DQNPolicy itself
            if base.__name__ == name and base.__module__ == module:
                return candidate
    raise UnsafeZipError(
        f"{path}: its policy class {module}.{name} is not one of {algorithm.__name__}'s "
        f"policies ({sorted(algorithm.policy_aliases)}); is it a model of another algorithm?"
    )


def _int(path: Path, key: str, value: Any) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise UnsafeZipError(f"{path}: {key} has the size {value!r:.40}") from None
    if not 1 <= number <= MAX_SPACE_SIZE:
        raise UnsafeZipError(f"{path}: {key} has the size {number}, not in [1, {MAX_SPACE_SIZE}]")
    return number


def _space(path: Path, key: str, value: dict):
    """A Gymnasium space rebuilt from the plain fields SB3 writes next to its pickle."""
    import numpy as np
    from gymnasium import spaces

    kind = _type_name(value).rsplit(".", 1)[-1]
    if kind == "Discrete":
        start = int(str(value.get("start", "0")))
        return spaces.Discrete(_int(path, key, value.get("n")), start=start)
    if kind == "MultiBinary":
        return spaces.MultiBinary(_int(path, key, value.get("n")))
    if kind == "Box":
        shape = value.get("_shape")
        dtype = str(value.get("dtype", ""))
        if (
            not isinstance(shape, list)
            or len(shape) != 1
            or dtype not in ("float32", "float64", "int8", "uint8")
        ):
            raise UnsafeZipError(f"{path}: {key} is a Box of shape {shape!r:.40} dtype {dtype!r}")
        try:
            low, high = float(value["low_repr"]), float(value["high_repr"])
        except (KeyError, ValueError):
            raise UnsafeZipError(
                f"{path}: {key} is a Box without uniform bounds; cannot rebuild it safely"
            ) from None
        return spaces.Box(low, high, shape=(_int(path, key, shape[0]),), dtype=np.dtype(dtype))
    raise UnsafeZipError(f"{path}: {key} is a {kind or 'pickled'} space; cannot rebuild it safely")


def _safe_classes() -> dict[str, type]:
    """Classes a pickled ``policy_kwargs`` may name, by the repr SB3 writes next to the pickle."""
    import torch
    from stable_baselines3.common import torch_layers

    classes = [getattr(torch.nn, name) for name in SAFE_ACTIVATIONS]
    classes += [torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.SGD]
    classes += [torch_layers.FlattenExtractor]
    return {repr(cls): cls for cls in classes}


def _check_policy_kwargs(path: Path, kwargs: Any) -> dict:
    if kwargs is None:
        return {}
    if _is_pickled(kwargs):
        rebuilt = {}
        for name, item in kwargs.items():
            if name.startswith(":"):
                continue
            if isinstance(item, str) and item in _safe_classes():
                rebuilt[name] = _safe_classes()[item]
            elif isinstance(item, str) and item.startswith("<"):
                raise UnsafeZipError(
                    f"{path}: policy_kwargs.{name} is a pickled object ({item:.60}); melody-rl "
                    "does not unpickle model zips"
                )
            else:
                rebuilt[name] = item
        kwargs = rebuilt
    if not isinstance(kwargs, dict):
        raise UnsafeZipError(f"{path}: policy_kwargs is not a JSON object")
    widths = []
    arch = kwargs.get("net_arch", [])
    for part in arch.values() if isinstance(arch, dict) else [arch]:
        widths.extend(part if isinstance(part, list) else [part])
    if len(widths) > 2 * MAX_LAYERS or not all(
        type(width) is int and 1 <= width <= MAX_LAYER_WIDTH for width in widths
    ):
        raise UnsafeZipError(
            f"{path}: policy_kwargs.net_arch {arch!r:.80} must list at most {MAX_LAYERS} layer "
            f"widths, each an integer in [1, {MAX_LAYER_WIDTH}]"
        )
    for name in ("lstm_hidden_size", "n_lstm_layers"):
        if name in kwargs and (type(kwargs[name]) is not int or not 1 <= kwargs[name] <= 4096):
            raise UnsafeZipError(f"{path}: policy_kwargs.{name} = {kwargs[name]!r:.40}")
    return kwargs


def safe_custom_objects(path: str | os.PathLike, algorithm: type) -> dict[str, Any]:
    """``custom_objects`` for ``algorithm.load(path, ...)`` that replace every pickled entry of
    the zip's ``data``, so that SB3 unpickles nothing.

    Raises:
        UnsafeZipError: an entry that cannot be rebuilt from plain text (the message names it),
            a model of another algorithm, or a size out of bounds.
    """
    path = Path(path)
    data = read_data(path)
    objects: dict[str, Any] = {
        "policy_kwargs": _check_policy_kwargs(path, data.get("policy_kwargs")),
        # Prediction never touches the buffers: allocate them at their smallest.
        "buffer_size": 1,
        "replay_buffer_kwargs": {},
        "rollout_buffer_kwargs": {},
        "train_freq": 1,
    }
    if "n_epochs" in data or "rollout_buffer_class" in data:  # on-policy: n_steps sizes a buffer
        objects.update(n_steps=2, batch_size=2)
    for key in ("policy_class", "observation_space", "action_space"):
        if key not in data:
            raise UnsafeZipError(f"{path}: its 'data' entry lacks {key!r}")
    for key, value in data.items():
        if key in objects:
            continue  # replaced above
        if key == "policy_class":
            if not _is_pickled(value):
                raise UnsafeZipError(f"{path}: policy_class is not a class entry")
            objects[key] = _policy_class(path, value, algorithm)
        elif key in ("observation_space", "action_space"):
            objects[key] = _space(path, key, value if isinstance(value, dict) else {})
        elif key in SCHEDULE_KEYS:
            objects[key] = _constant(0.0) if value is not None else None
        elif key in CLEARED_KEYS:
            objects[key] = None
        elif key == "learning_rate" and not isinstance(value, (int, float)):
            objects[key] = 0.0
        elif _is_pickled(value):
            raise UnsafeZipError(
                f"{path}: its 'data' entry {key!r} is a pickled {_type_name(value) or 'object'}; "
                "melody-rl does not unpickle model zips (they can run code)"
            )
    if "exploration_schedule" in data:
        objects["exploration_schedule"] = _constant(0.0)
    return objects


def load_sb3_model(path: str | os.PathLike, algorithm: type) -> Any:
    """``algorithm.load(path)`` on the CPU with every pickled entry replaced (see module doc)."""
    objects = safe_custom_objects(path, algorithm)
    return algorithm.load(str(path), device="cpu", custom_objects=objects)
