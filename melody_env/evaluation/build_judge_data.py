"""Build ``melody_env/evaluation/data/judge_corpus.npz``, the corpus the evaluation's judge needs.

The training and test splits of the shipped Note RNN's corpus (its five music21 collections,
``airdsAirs`` held out; :func:`melody_env.data.splits.load_splits`), as uint8 tokens and int64
offsets. Needs music21 (the ``corpus`` extra) or a filled corpus cache::

    python -m melody_env.evaluation.build_judge_data            # writes the shipped file
    python -m melody_env.evaluation.build_judge_data --out FILE --limit 50   # a small test file

It prints the split sizes, the file size and the time to fit the judge's 5-gram on the training
split and to score the test windows.
"""

from __future__ import annotations

import argparse
import time

from melody_env.data.splits import DEFAULT_HELD_OUT, load_splits
from melody_env.evaluation.judge import DATA_FILE, load_judge_corpus, save_judge_corpus

COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
"""The shipped Note RNN's training collections (``MODEL_CARD.md``)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DATA_FILE), help="output .npz (default: shipped)")
    parser.add_argument("--cache-dir", default=None, help="corpus cache folder")
    parser.add_argument("--limit", type=int, default=None, help="first tunes per collection")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args(argv)
    splits, removed = load_splits(
        COLLECTIONS,
        held_out=DEFAULT_HELD_OUT,
        cache_dir=args.cache_dir,
        processes=args.processes,
        limit=args.limit,
    )
    info = {
        "collections": list(COLLECTIONS),
        "held_out": DEFAULT_HELD_OUT,
        "limit": args.limit,
        "train": splits["train"].summary(),
        "test": splits["test"].summary(),
        "test_removed_as_copies": removed["test"],
    }
    path = save_judge_corpus(args.out, splits["train"].melodies, splits["test"].melodies, info)
    print(info)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    corpus = load_judge_corpus(path)
    started = time.perf_counter()
    model = corpus.model
    fitted = time.perf_counter()
    from melody_env.evaluation.judge import cross_entropy

    windows_entropy = cross_entropy(model, corpus.windows)
    print(
        f"5-gram fit on the training split: {fitted - started:.2f} s; "
        f"{len(corpus.windows):,} test windows scored in {time.perf_counter() - fitted:.2f} s "
        f"({windows_entropy:.3f} nats/token)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
