"""The reward RNN's view of a batch of compositions in their keys.

The shipped Note RNN knows C major and A minor only. :class:`KeyReading` reads each composition's
tokens to it transposed into that reference key and maps its log-probabilities back, with the tables
of :mod:`melody_env.music.transposition` (which defines the reading). Built once per reset from the
episode keys; a step costs one ``take`` for the tokens and one compiled gather of the ``[B, 38]``
log-probabilities, written into two alternating buffers. Where every composition is in C major or A
minor the envs use no reading at all (``for_keys`` returns ``None``), so those keys behave bit for
bit as before the reading existed.
"""

from __future__ import annotations

import numba
import numpy as np

from melody_env.music.encoding import NUM_CLASSES
from melody_env.music.transposition import KEY_SHIFTS, READING_TABLES, needs_transposition

_READING_FLAT = READING_TABLES.ravel()


class KeyReading:
    """Maps between ``B`` compositions' tokens and the reward RNN's reference key.

    Args:
        key_index: ``int64 [B]``, each composition's :attr:`Key.index
            <melody_env.music.keys.Key.index>`.
    """

    def __init__(self, key_index: np.ndarray) -> None:
        key_index = np.asarray(key_index, dtype=np.int64)
        batch = len(key_index)
        self.key_index = key_index
        self.shifts = KEY_SHIFTS[key_index]
        self._token_offsets = key_index * NUM_CLASSES
        self._tables = np.ascontiguousarray(READING_TABLES[key_index])  # [B, 38]
        self._buffers = (
            np.empty((batch, NUM_CLASSES), np.float32),
            np.empty((batch, NUM_CLASSES), np.float32),
        )
        self._turn = 0

    @classmethod
    def for_keys(cls, key_index: np.ndarray) -> KeyReading | None:
        """A reading for these keys, or ``None`` when all are C major or A minor."""
        return cls(key_index) if needs_transposition(key_index) else None

    def tokens(self, tokens: np.ndarray) -> np.ndarray:
        """``int64 [B]``: the reference tokens the RNN reads for one token per composition."""
        return _READING_FLAT.take(self._token_offsets + tokens)

    def primers(self, primers: np.ndarray) -> np.ndarray:
        """``int64 [B, T]``: the reference tokens of stacked primers (a new array)."""
        return READING_TABLES[self.key_index[:, None], primers]

    def primer(self, row: int, primer: np.ndarray) -> np.ndarray:
        """The reference tokens of composition ``row``'s primer (a new array)."""
        return READING_TABLES[self.key_index[row]][np.asarray(primer, dtype=np.int64)]

    def log_probs(self, reference_log_probs: np.ndarray) -> np.ndarray:
        """``float32 [B, 38]``: the RNN's ``[B, 38]`` reference log-probabilities over each
        composition's own tokens. Written into one of two buffers used in turn, so the result
        stays valid through the next call."""
        self._turn ^= 1
        out = self._buffers[self._turn]
        if out.dtype != reference_log_probs.dtype:  # a float64 Note RNN
            self._buffers = tuple(
                np.empty_like(b, reference_log_probs.dtype) for b in self._buffers
            )
            out = self._buffers[self._turn]
        _gather_rows(np.ascontiguousarray(reference_log_probs), self._tables, out)
        return out


@numba.njit(cache=True, nogil=True)
def _gather_rows(values: np.ndarray, tables: np.ndarray, out: np.ndarray) -> None:
    """``out[b, j] = values[b, tables[b, j]]``: in a compiled loop, about twice as fast as
    numpy's fancy indexing for a ``[256, 38]`` batch. The tables are the package's own
    permutations of ``0..37``, so the reads are in bounds."""
    for row in range(values.shape[0]):
        for column in range(values.shape[1]):
            out[row, column] = values[row, tables[row, column]]
