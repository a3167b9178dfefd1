"""Turning the ``key`` and ``primer`` options into an episode's key and primer tokens."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from melody_env.music.encoding import NUM_CLASSES, validate_tokens
from melody_env.music.keys import KEY_NAMES, Key

ANY_KEY = "any"
"""The ``key`` option that draws the episode's key from the 24 at each reset."""

ALL_KEYS = tuple(Key.from_name(name) for name in KEY_NAMES)
"""The 24 keys in :attr:`Key.index` order."""

KeySpec = str | Key
"""A key (``Key`` or a name such as ``"F# minor"``) or ``"any"``."""


def check_key(key: KeySpec) -> Key | str:
    """A :class:`Key`, or :data:`ANY_KEY` for ``"any"`` (any case); else ``ValueError``."""
    if isinstance(key, str) and key.strip().lower() == ANY_KEY:
        return ANY_KEY
    if not isinstance(key, (str, Key)):
        raise ValueError(
            f"key must be a key name such as 'C major' or 'F# minor', or 'any', got {key!r}"
        )
    try:
        return Key.from_name(key)
    except ValueError as error:
        raise ValueError(f"{error}; or 'any' for a key drawn at each reset") from None


def resolve_key(key: Key | str, np_random: np.random.Generator) -> Key:
    """The episode's key: ``key`` itself, or for :data:`ANY_KEY` one of the 24 drawn uniformly
    from ``np_random`` (one ``integers`` draw, made before the primer's)."""
    if key == ANY_KEY:
        return ALL_KEYS[int(np_random.integers(0, len(ALL_KEYS)))]
    return key


PrimerSpec = None | str | os.PathLike | Sequence[int] | np.ndarray
"""``None`` (a random token), a MIDI file path, or a sequence of tokens."""


def check_primer(primer: PrimerSpec) -> PrimerSpec:
    """Validate a primer option early (construction or ``reset``), with a clear message."""
    if primer is None or isinstance(primer, (str, os.PathLike)):
        if primer is not None and not Path(primer).is_file():
            raise FileNotFoundError(f"primer MIDI file not found: {primer}")
        return primer
    tokens = validate_tokens(primer, "primer tokens")
    if tokens.ndim != 1 or tokens.size == 0:
        raise ValueError(f"a primer must be a non-empty 1-D sequence of tokens, got {primer!r}")
    return tokens


@lru_cache(maxsize=64)
def _midi_primer(path: str, key: Key, version: tuple) -> np.ndarray:
    from melody_env.io.midi_reader import read_primer

    tokens = read_primer(path, key=key)
    tokens.setflags(write=False)
    return tokens


def random_primer_token(np_random: np.random.Generator) -> int:
    """The default primer: one token drawn uniformly from all 38 (the original drew from 0..36
    only)."""
    return int(np_random.integers(0, NUM_CLASSES))


def resolve_primer(primer: PrimerSpec, key: Key, np_random: np.random.Generator) -> np.ndarray:
    """Primer tokens for one episode.

    ``None`` draws one token (:func:`random_primer_token`); a path reads the MIDI file's first
    monophonic line transposed to ``key``; tokens are used as given.
    """
    if primer is None:
        return np.array([random_primer_token(np_random)], dtype=np.int64)
    if isinstance(primer, (str, os.PathLike)):
        path = Path(primer)
        if not path.is_file():
            raise FileNotFoundError(f"primer MIDI file not found: {path}")
        info = path.stat()
        # The file's version: a rewrite changes ctime (which no one can set back) and usually
        # the size or inode, even where the writer restores the mtime.
        version = (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)
        return _midi_primer(str(path.resolve()), key, version)
    return np.asarray(primer, dtype=np.int64)


def stack_primers(primers: list[np.ndarray] | np.ndarray) -> np.ndarray | None:
    """The primers as one ``int64 [B, T]`` array if they all have ``T`` tokens, else ``None``.

    >>> stack_primers([np.array([3, 4]), np.array([5, 6])]).tolist(), stack_primers([[1], [2, 3]])
    ([[3, 4], [5, 6]], None)
    """
    if isinstance(primers, np.ndarray) and primers.ndim == 2:
        return primers.astype(np.int64, copy=False)
    length = len(primers[0])
    if all(len(primer) == length for primer in primers):
        return np.array(primers, dtype=np.int64)
    return None
