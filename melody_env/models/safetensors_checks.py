"""Read a ``.safetensors`` file only after its header has been checked against what we expect.

``safetensors`` never unpickles, but it trusts the header: names, dtypes and shapes come from
the file, and a caller that builds a model from a config stored in the same file allocates
whatever that config says before any tensor is compared with it. Here the header (a JSON
document after an 8-byte length) is read and checked by hand first: the file's size against a
cap, the header's size, every entry's dtype, shape and byte range, and (when given) the names and
shapes a model expects. Only then are the tensors read, and floating ones are checked for NaN and
infinity before anyone uses them. Memory used before a refusal is bounded by the caps, not by
the file's claims.

>>> import tempfile, pathlib, torch
>>> from safetensors.torch import save_file
>>> path = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
>>> save_file({"w": torch.tensor([1.0, float("nan")])}, str(path))
>>> read_checked(path, expected={"w": (2,)})
Traceback (most recent call last):
...
ValueError: ...t.safetensors: tensor 'w' holds NaN or infinite values
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest ``.safetensors`` file read by default (the shipped Note RNN is 240 KB)."""
MAX_HEADER_BYTES = 1024 * 1024
"""Largest JSON header read (a few hundred bytes per tensor)."""
FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}
"""Floating dtypes (safetensors names) and their sizes in bytes."""
OTHER_DTYPES = {"U8": 1, "I8": 1, "I16": 2, "I32": 4, "I64": 8, "BOOL": 1, "U16": 2}
"""Other dtypes a header may name; refused unless the caller allows them for that tensor."""
MAX_DIMS = 8


def regular_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a :class:`Path` if it is an existing regular file (symlinks followed).

    Raises:
        FileNotFoundError: nothing there.
        ValueError: a folder, FIFO, device or socket.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror}") from error
    if not stat.S_ISREG(mode):
        raise ValueError(f"{what} {path} is not a regular file")
    return path


def read_header(
    path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES
) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """The metadata and the ``name -> (dtype, shape)`` entries of a safetensors file, checked.

    Every entry's dtype must be known, its shape a list of at most :data:`MAX_DIMS`
    non-negative integers, and its byte range inside the file and exactly as long as the
    dtype and shape say.

    Raises:
        FileNotFoundError: no file there.
        ValueError: not a regular file, larger than ``max_bytes``, or a malformed header.
    """
    path = regular_file(path, "safetensors file")
    size = path.stat().st_size
    if size > max_bytes:
        raise _unreadable(path, f"{size:,} bytes, more than the {max_bytes:,} allowed")
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise _unreadable(path, f"only {size} bytes")
        length = int.from_bytes(prefix, "little")
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise _unreadable(path, f"its header claims {length:,} bytes")
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise _unreadable(path, f"header: {error}") from error
    if not isinstance(header, dict):
        raise _unreadable(path, "its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise _unreadable(path, "its metadata must map strings to strings")
    data_bytes = size - 8 - length
    entries = {}
    for name, entry in header.items():
        entries[name] = _check_entry(path, name, entry, data_bytes)
    return metadata, entries


def _check_entry(path: Path, name: str, entry, data_bytes: int) -> tuple[str, tuple[int, ...]]:
    if not isinstance(entry, dict):
        raise _unreadable(path, f"tensor {name!r:.80} has a malformed header entry")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    itemsize = FLOAT_DTYPES.get(dtype) or OTHER_DTYPES.get(dtype)
    if itemsize is None:
        raise _unreadable(path, f"tensor {name!r:.80} has the unknown dtype {dtype!r:.40}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(dim) is int and dim >= 0 for dim in shape)
    ):
        raise _unreadable(path, f"tensor {name!r:.80} has an invalid shape {shape!r:.80}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(type(x) is int for x in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= data_bytes
        or offsets[1] - offsets[0] != math.prod(shape) * itemsize
    ):
        raise _unreadable(path, f"tensor {name!r:.80} has invalid data offsets {offsets!r:.80}")
    return dtype, tuple(shape)


def _unreadable(path: Path, reason: str) -> ValueError:
    return ValueError(f"{path} is not a readable safetensors file ({reason})")


def shape_problems(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> list[str]:
    """What differs between the tensor names and shapes ``found`` and those ``expected``.

    >>> shape_problems({"w": (3, 2), "b": (3,)}, {"w": (3, 4), "b": (3,)})
    ["tensor 'w' has shape (3, 4), expected (3, 2)"]
    >>> shape_problems({"w": (3, 2), "b": (3,)}, {"w": (3, 2), "x": (1,)})
    ["missing tensors ['b']", "unexpected tensors ['x']"]
    """
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for name in sorted(set(expected) & set(found)):
        if tuple(found[name]) != tuple(expected[name]):
            problems.append(
                f"tensor {name!r} has shape {tuple(found[name])}, expected {tuple(expected[name])}"
            )
    return problems


def read_checked(
    path: str | os.PathLike,
    expected: dict[str, tuple[int, ...]] | None = None,
    allow_other_dtypes: tuple[str, ...] = (),
    max_bytes: int = MAX_FILE_BYTES,
    source: str | None = None,
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The metadata and tensors of a safetensors file, after :func:`read_header`'s checks and:

    - with ``expected``: exactly those names, each of that shape (checked on the header,
      before any tensor is read);
    - every tensor floating, except names starting with one of ``allow_other_dtypes``;
    - no NaN or infinity in a floating tensor.

    Floating tensors come back as float32 (F16, BF16 and F64 files are converted).

    Raises:
        FileNotFoundError: no file there.
        ValueError: any check failed; the message names ``source`` (default: the path), the
            tensor and what was expected.
    """
    from melody_env.models.note_rnn import single_threaded

    source = source or str(path)
    _metadata, entries = read_header(path, max_bytes)
    problems = []
    if expected is not None:
        problems = shape_problems(expected, {name: shape for name, (_, shape) in entries.items()})
    for name, (dtype, _shape) in sorted(entries.items()):
        if dtype not in FLOAT_DTYPES and not name.startswith(allow_other_dtypes or ("\0",)):
            problems.append(f"tensor {name!r} has dtype {dtype}; only floating dtypes are allowed")
    if problems:
        raise ValueError(f"{source} does not match the model: {'; '.join(problems)}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"{source}: unreadable safetensors file ({error})") from error
    with single_threaded(), torch.no_grad():
        for name, tensor in tensors.items():
            if tensor.is_floating_point():
                if tensor.dtype != torch.float32:
                    tensor = tensors[name] = tensor.to(torch.float32)
                if not bool(torch.isfinite(tensor).all()):
                    raise ValueError(f"{source}: tensor {name!r} holds NaN or infinite values")
    return _metadata, tensors
