"""The melody corpus: music21's bundled folk-tune collections, extracted once and cached.

Each collection is parsed tune by tune (in parallel), encoded by :mod:`melody_env.data.extract`
and cached as one compressed ``.npz`` (token arrays, offsets, piece ids, counts; never pickles)
under the cache folder: the ``cache_dir`` argument, else ``$MELODY_RL_CACHE/corpus``, else
``~/.cache/melody-rl/corpus``. The file stores a fingerprint of the extraction settings, the code
version, the music21 version and the source files; a cache file whose fingerprint differs or that
cannot be read completely is rebuilt, never trusted.

Licences (see ``melody_env/models/checkpoints/MODEL_CARD.md``): ``essenFolksong`` may be used only
non-commercially (permission given to music21); the other four are public-domain collections.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import time
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from melody_env.atomic import atomic_path
from melody_env.data.extract import require_music21, split_abc_tunes, tokens_from_abc
from melody_env.music.encoding import NUM_CLASSES, is_note

logger = logging.getLogger(__name__)

COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
"""The monophonic ABC collections music21 ships, largest first."""
PUBLIC_DOMAIN_COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
"""Printed collections of the 18th-19th centuries; ``essenFolksong`` is non-commercial only."""
EXTRACTION_VERSION = 1
"""Bump when :mod:`melody_env.data.extract` changes what it produces; invalidates caches."""
CACHE_ENV_VAR = "MELODY_RL_CACHE"


@dataclass(frozen=True)
class ExtractionSettings:
    """What makes a tune a training melody. Part of every cache file's fingerprint."""

    min_steps: int = 32
    """Melodies shorter than this many sixteenth steps (two 4/4 bars) are dropped."""
    min_distinct_pitches: int = 5
    """Melodies with fewer distinct (folded, transposed) pitches are dropped, as in Magenta."""
    transpose: bool = True
    """Transpose major tunes to C major and minor tunes to A minor (music21 key analysis)."""

    def __post_init__(self) -> None:
        for name in ("min_steps", "min_distinct_pitches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"ExtractionSettings.{name} must be a positive integer, got {value!r}"
                )


@dataclass
class Melodies:
    """The melodies of one collection: ``tokens[offsets[i]:offsets[i + 1]]`` is piece ``i``."""

    collection: str
    tokens: np.ndarray
    offsets: np.ndarray
    piece_ids: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)
    """Tunes read, kept and dropped (by reason), and the extraction's wall time in seconds."""

    def __len__(self) -> int:
        return len(self.piece_ids)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


def check_collections(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Return ``names`` as a tuple, or raise ``ValueError`` naming an unknown or repeated one."""
    for name in names:
        if name not in COLLECTIONS:
            raise ValueError(f"unknown corpus collection {name!r}; known: {', '.join(COLLECTIONS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"corpus collections are repeated: {list(names)}")
    return tuple(names)


def default_cache_dir() -> Path:
    """``$MELODY_RL_CACHE/corpus`` if the variable is set, else ``~/.cache/melody-rl/corpus``."""
    root = os.environ.get(CACHE_ENV_VAR)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "melody-rl"
    return base / "corpus"


def source_files(collection: str) -> list[Path]:
    """The ABC files of a music21 corpus collection, sorted by name."""
    check_collections([collection])
    music21 = require_music21()
    folder = Path(music21.common.getCorpusFilePath()) / collection
    files = sorted(folder.glob("*.abc"))
    if not files:
        raise FileNotFoundError(f"no ABC files for collection {collection!r} under {folder}")
    return files


def fingerprint(collection: str, settings: ExtractionSettings, limit: int | None = None) -> str:
    """Hash of everything a cached collection depends on."""
    music21 = require_music21()
    sources = [(f.name, f.stat().st_size) for f in source_files(collection)]
    payload = {
        "collection": collection,
        "settings": asdict(settings),
        "limit": limit,
        "extraction_version": EXTRACTION_VERSION,
        "music21": music21.__version__,
        "sources": sources,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_tunes(collection: str, limit: int | None = None) -> list[tuple[str, str]]:
    """``(piece id, ABC text)`` of every tune; the id is ``"<file stem>/<ordinal>"``."""
    tunes = []
    for path in source_files(collection):
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        for ordinal, (_, tune) in enumerate(split_abc_tunes(text)):
            tunes.append((f"{path.stem}/{ordinal:04d}", tune))
            if limit is not None and len(tunes) >= limit:
                return tunes
    return tunes


def _extract_one(job: tuple[str, str, dict]) -> tuple[str, np.ndarray | None, str]:
    """Worker: ``(piece id, tokens or None, status)``; status says why a tune was dropped."""
    piece_id, text, settings_dict = job
    settings = ExtractionSettings(**settings_dict)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tokens = tokens_from_abc(text, transpose=settings.transpose)
    except Exception:  # music21 raises many exception types on malformed ABC
        return piece_id, None, "parse_failed"
    if len(tokens) < settings.min_steps:
        return piece_id, None, "too_short"
    if len(np.unique(tokens[is_note(tokens)])) < settings.min_distinct_pitches:
        return piece_id, None, "too_few_pitches"
    return piece_id, tokens, "kept"


def extract_collection(
    collection: str,
    settings: ExtractionSettings | None = None,
    processes: int = 2,
    limit: int | None = None,
    progress: bool = True,
) -> Melodies:
    """Parse and encode a collection (no cache). ``limit`` keeps only its first tunes."""
    settings = settings or ExtractionSettings()
    if processes < 1:
        raise ValueError(f"processes must be a positive integer, got {processes!r}")
    started = time.perf_counter()
    tunes = read_tunes(collection, limit)
    jobs = [(piece_id, text, asdict(settings)) for piece_id, text in tunes]
    bar = tqdm(total=len(jobs), desc=f"extract {collection}", disable=not progress, unit="tune")
    if processes == 1:
        results = []
        for job in jobs:
            results.append(_extract_one(job))
            bar.update()
    else:
        # spawn: the parent may hold torch's thread pools, which do not survive a fork.
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = []
            for result in pool.imap(_extract_one, jobs, chunksize=8):
                results.append(result)
                bar.update()
    bar.close()
    counts = Counter(status for _, _, status in results)
    kept = [(piece_id, tokens) for piece_id, tokens, status in results if status == "kept"]
    lengths = [len(tokens) for _, tokens in kept]
    stats = {"tunes": len(results), **{k: counts.get(k, 0) for k in _STATUSES}}
    stats["seconds"] = round(time.perf_counter() - started, 1)  # wall time of the extraction
    return Melodies(
        collection=collection,
        tokens=np.concatenate([t for _, t in kept]).astype(np.uint8)
        if kept
        else np.zeros(0, np.uint8),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        piece_ids=np.array([piece_id for piece_id, _ in kept], dtype=str),
        stats=stats,
    )


_STATUSES = ("kept", "parse_failed", "too_short", "too_few_pitches")


def cache_path(collection: str, cache_dir: str | os.PathLike | None, limit: int | None) -> Path:
    """Where a collection's cache file lives."""
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    suffix = "" if limit is None else f"-first{limit}"
    return folder / f"{collection}{suffix}.npz"


def save_melodies(path: str | os.PathLike, melodies: Melodies, fingerprint_hex: str) -> None:
    """Write a collection to a compressed ``.npz``, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle,
            tokens=melodies.tokens,
            offsets=melodies.offsets,
            piece_ids=melodies.piece_ids,
            collection=np.array(melodies.collection),
            stats=np.array(json.dumps(melodies.stats)),
            fingerprint=np.array(fingerprint_hex),
        )


def load_melodies(path: str | os.PathLike, fingerprint_hex: str | None = None) -> Melodies:
    """Read a cache file written by :func:`save_melodies` (never unpickling).

    Raises:
        ValueError: the file is unreadable, inconsistent, or its fingerprint differs.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        melodies = Melodies(
            collection=str(arrays["collection"]),
            tokens=arrays["tokens"],
            offsets=arrays["offsets"],
            piece_ids=arrays["piece_ids"],
            stats=json.loads(str(arrays["stats"])),
        )
        stored = str(arrays["fingerprint"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"corpus cache {path} is unreadable: {error}") from error
    if fingerprint_hex is not None and stored != fingerprint_hex:
        raise ValueError(f"corpus cache {path} was made with other settings or sources")
    offsets, tokens = melodies.offsets, melodies.tokens
    if not (
        offsets.ndim == 1
        and len(offsets) == len(melodies.piece_ids) + 1
        and offsets[0] == 0
        and offsets[-1] == len(tokens)
        and np.all(np.diff(offsets) > 0)
        and (len(tokens) == 0 or int(tokens.max()) < NUM_CLASSES)
    ):
        raise ValueError(f"corpus cache {path} is inconsistent (offsets, ids or token range)")
    return melodies


def load_collection(
    collection: str,
    settings: ExtractionSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    processes: int = 2,
    limit: int | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> Melodies:
    """A collection's melodies, from the cache if it is valid, else extracted and cached.

    Args:
        collection: one of :data:`COLLECTIONS`.
        settings: extraction settings (defaults if ``None``).
        cache_dir: cache folder (see the module docstring for the default).
        processes: worker processes for extraction.
        limit: keep only the collection's first ``limit`` tunes (tests, quick trials).
        rebuild: ignore any cache file and extract again.
        progress: show a tqdm progress bar while extracting.
    """
    check_collections([collection])
    settings = settings or ExtractionSettings()
    path = cache_path(collection, cache_dir, limit)
    expected = fingerprint(collection, settings, limit)
    if path.exists() and not rebuild:
        try:
            return load_melodies(path, expected)
        except ValueError as error:
            logger.warning("%s; extracting %s again", error, collection)
    melodies = extract_collection(collection, settings, processes, limit, progress)
    save_melodies(path, melodies, expected)
    return melodies
