"""Hostile Note RNN files: refused before anything large is allocated, and never trusted.

The config in a file's metadata is checked against bounds and then against the tensor headers
before a model is built; dtypes must be floating; NaN and infinity are refused. The memory a
refusal costs is measured in a fresh process (peak resident size, ``getrusage``).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from melody_env.models.note_rnn import NoteRNN, NoteRNNConfig


def tensors_of(hidden_size=8, num_layers=1):
    model = NoteRNN(NoteRNNConfig(hidden_size=hidden_size, num_layers=num_layers), seed=0)
    return {name: tensor.contiguous() for name, tensor in model.state_dict().items()}


def header(**config):
    return {"format": "melody-rl/note-rnn", "config": json.dumps(config)}


def write(path, tensors, **config):
    save_file(tensors, str(path), metadata=header(**({"hidden_size": 8} | config)))
    return path


def raw_file(path, entries: dict, metadata: dict, data: bytes = b""):
    """A safetensors file written by hand: any header, whatever it claims."""
    document = json.dumps({"__metadata__": metadata, **entries}).encode()
    path.write_bytes(struct.pack("<Q", len(document)) + document + data)
    return path


@pytest.mark.parametrize(
    "config, message",
    [
        ({"num_classes": 1_000_000}, "num_classes must be 38"),
        ({"num_classes": 40}, "num_classes must be 38"),
        ({"num_layers": 1_000_000}, r"num_layers must be an integer in \[1, 8\]"),
        ({"hidden_size": 10**9}, r"hidden_size must be an integer in \[1, 2048\]"),
        ({"hidden_size": 2048, "num_layers": 8}, "parameters, more than the 8,000,000 allowed"),
        ({"hidden_size": 8.0}, "hidden_size must be an integer"),
        ({"hidden_size": True}, "hidden_size must be an integer"),
        ({"dropout": float("nan")}, r"dropout must be in \[0, 1\)"),
    ],
)
def test_config_bounds(tmp_path, config, message):
    path = write(tmp_path / "m.safetensors", tensors_of(), **config)
    with pytest.raises(ValueError, match=message):
        NoteRNN.load(path)


def test_header_shapes_are_checked_before_reading_tensors(tmp_path):
    """The header claims a tensor of 10^12 floats (4 TB): refused from the header alone."""
    entries = {"head.bias": {"dtype": "F32", "shape": [10**12], "data_offsets": [0, 4 * 10**12]}}
    path = raw_file(tmp_path / "m.safetensors", entries, header(hidden_size=8))
    with pytest.raises(ValueError, match="invalid data offsets"):
        NoteRNN.load(path)


def test_shape_mismatch_names_tensor_expected_and_found(tmp_path):
    path = write(tmp_path / "m.safetensors", tensors_of(hidden_size=16), hidden_size=8)
    with pytest.raises(ValueError, match=r"'head.weight' has shape \(38, 16\), expected \(38, 8\)"):
        NoteRNN.load(path)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool, torch.int32])
def test_integer_and_bool_weights_are_refused(tmp_path, dtype):
    tensors = {name: t.to(dtype) for name, t in tensors_of().items()}
    path = write(tmp_path / "m.safetensors", tensors)
    with pytest.raises(ValueError, match="only floating dtypes are allowed"):
        NoteRNN.load(path)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_load_as_float32(tmp_path, dtype):
    tensors = {name: t.to(dtype) for name, t in tensors_of().items()}
    model = NoteRNN.load(write(tmp_path / "m.safetensors", tensors))
    assert model.head.weight.dtype == torch.float32
    expected = tensors["head.weight"].to(torch.float32)
    assert torch.equal(model.head.weight.detach(), expected)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    tensors = tensors_of()
    tensors["lstm.weight_hh_l0"][3, 1] = bad
    path = write(tmp_path / "m.safetensors", tensors)
    with pytest.raises(ValueError, match=r"'lstm\.weight_hh_l0' holds NaN or infinite values"):
        NoteRNN.load(path)


def test_float64_beyond_float32_range_is_refused(tmp_path):
    tensors = {name: t.to(torch.float64) for name, t in tensors_of().items()}
    tensors["head.bias"][0] = 1e300
    with pytest.raises(ValueError, match="holds NaN or infinite"):
        NoteRNN.load(write(tmp_path / "m.safetensors", tensors))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "only 0 bytes"),
        (struct.pack("<Q", 2**62), "its header claims"),
        (struct.pack("<Q", 3) + b"[1]x", "not a JSON object"),
        (struct.pack("<Q", 3) + b"\xff\xfe{", "header"),
        (struct.pack("<Q", 20000) + b"[" * 20000, "header"),
    ],
)
def test_malformed_headers(tmp_path, content, message):
    path = tmp_path / "m.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        NoteRNN.load(path)


def test_not_a_regular_file(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        NoteRNN.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="Note RNN checkpoint not found"):
        NoteRNN.load(tmp_path / "missing.safetensors")


def test_batch_sizes_are_bounded():
    model = NoteRNN(NoteRNNConfig(hidden_size=4), seed=0)
    for bad in (0, -1, 3_000_000, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be"):
            model.initial_state(bad)
    assert model.initial_state(np.int64(3))[0].shape == (1, 3, 4)


MEMORY_SCRIPT = """
import json, resource, struct, sys, pathlib
from melody_env.models.note_rnn import NoteRNN
folder = pathlib.Path(sys.argv[1])
NoteRNN.load()  # warm: imports, the shipped model
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
refused = 0
for path in sorted(folder.iterdir()):
    try:
        NoteRNN.load(path)
    except ValueError:
        refused += 1
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"refused": refused, "growth_kb": after - before}))
"""


def test_refusals_cost_less_than_100_mb(tmp_path):
    """The issue's memory bombs, each refused with under 100 MB of peak memory growth."""
    folder = tmp_path / "bombs"
    folder.mkdir()
    small = tensors_of()
    write(folder / "classes.safetensors", small, num_classes=1_000_000)
    write(folder / "layers.safetensors", small, num_layers=1_000_000)
    write(folder / "hidden.safetensors", small, hidden_size=10**9)
    write(folder / "wide.safetensors", small, hidden_size=2048, num_layers=2)  # shapes differ
    entries = {"head.bias": {"dtype": "F32", "shape": [10**10], "data_offsets": [0, 4 * 10**10]}}
    raw_file(folder / "claims.safetensors", entries, header(hidden_size=8))
    big = tensors_of(hidden_size=1380)  # 8M parameters, within bounds, 32 MB, with a NaN
    big["head.bias"][0] = float("nan")
    write(folder / "nan.safetensors", big, hidden_size=1380)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(MEMORY_SCRIPT), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refused"] == 6
    assert result["growth_kb"] < 100 * 1024, result
