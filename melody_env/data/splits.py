"""Train / validation / test / held-out splits of the corpus, by piece and deterministic.

A piece's split depends only on a hash of ``"<collection>/<piece id>"``, never on the order in
which pieces were read or on a random generator: adding a collection or re-extracting never moves
a piece between splits. The training collections are split 90/5/5; one whole collection (by
default ``airdsAirs``) is held out and never trained on. A validation, test or held-out melody
that is an exact copy of a training melody (folk collections share tunes) is removed, so every
evaluation melody is unseen.

>>> split_of("miscFolk", "americanfifeopus/0000") in SPLITS
True
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from melody_env.data.corpus import (
    ExtractionSettings,
    Melodies,
    check_collections,
    load_collection,
)

SPLITS = ("train", "validation", "test", "heldout")
EVALUATION_SPLITS = ("validation", "test", "heldout")
DEFAULT_HELD_OUT = "airdsAirs"
TRAIN_FRACTION = 0.90
VALIDATION_FRACTION = 0.05


def split_of(collection: str, piece_id: str) -> str:
    """``"train"``, ``"validation"`` or ``"test"`` for a piece of a training collection."""
    digest = hashlib.sha256(f"{collection}/{piece_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    if u < TRAIN_FRACTION:
        return "train"
    return "validation" if u < TRAIN_FRACTION + VALIDATION_FRACTION else "test"


@dataclass
class Split:
    """The melodies of one split and their ids (``"<collection>/<piece id>"``)."""

    melodies: list[np.ndarray] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return int(sum(len(m) for m in self.melodies))

    def summary(self) -> dict[str, int]:
        return {"pieces": len(self.melodies), "tokens": self.num_tokens}


def make_splits(
    collections: dict[str, Melodies], held_out: str | None = DEFAULT_HELD_OUT
) -> tuple[dict[str, Split], dict[str, int]]:
    """Assign every melody of ``collections`` to a split.

    Args:
        collections: extracted collections by name.
        held_out: the collection used only for evaluation (must be in ``collections``), or
            ``None`` for no held-out split.

    Returns:
        The four splits (``"heldout"`` empty if ``held_out`` is ``None``) and the number of
        evaluation melodies removed per split as exact copies of a training melody.
    """
    if held_out is not None and held_out not in collections:
        raise ValueError(
            f"held-out collection {held_out!r} is not among the loaded collections "
            f"{sorted(collections)}"
        )
    splits = {name: Split() for name in SPLITS}
    for name in sorted(collections):
        melodies = collections[name]
        for index, piece_id in enumerate(melodies.piece_ids.tolist()):
            split = "heldout" if name == held_out else split_of(name, piece_id)
            splits[split].melodies.append(melodies[index])
            splits[split].ids.append(f"{name}/{piece_id}")
    seen = {m.tobytes() for m in splits["train"].melodies}
    removed = {}
    for split_name in EVALUATION_SPLITS:
        split = splits[split_name]
        keep = [i for i, m in enumerate(split.melodies) if m.tobytes() not in seen]
        removed[split_name] = len(split.melodies) - len(keep)
        splits[split_name] = Split([split.melodies[i] for i in keep], [split.ids[i] for i in keep])
    return splits, removed


def load_splits(
    collections: tuple[str, ...] | list[str],
    held_out: str | None = DEFAULT_HELD_OUT,
    settings: ExtractionSettings | None = None,
    cache_dir: str | None = None,
    processes: int = 2,
    limit: int | None = None,
    progress: bool = True,
) -> tuple[dict[str, Split], dict[str, int]]:
    """Load (or extract) ``collections`` and split them; see :func:`make_splits`.

    ``held_out`` must be one of ``collections``; ``limit`` keeps the first tunes of each.
    """
    check_collections(list(collections))
    if held_out is not None and held_out not in collections:
        raise ValueError(
            f"held-out collection {held_out!r} must be one of the chosen collections "
            f"{list(collections)} (or None)"
        )
    loaded = {
        name: load_collection(
            name, settings, cache_dir, processes=processes, limit=limit, progress=progress
        )
        for name in collections
    }
    return make_splits(loaded, held_out)
