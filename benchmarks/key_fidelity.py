"""Is the env's reward RNN as right in every key as in C major? Two measurements, per key.

The shipped Note RNN was trained in C major and A minor; the envs read every melody to it
transposed into those keys (:mod:`melody_env.music.transposition`). This script measures, in
each of the 24 keys, with the shipped Note RNN:

1. **Untuned sampling.** ``--n`` compositions (default 10,000) of 32 steps after the default
   one-token random primer, each token drawn from the env's ``info["prior_log_probs"]`` (the
   untuned Note RNN as a policy), in the native vector env (``--batch`` envs at a time, seeded).

   * ``out of key %``: note onsets (tokens 2..37) whose pitch class is outside the key, per 100
     steps, over all compositions: the evaluation suite's "Notes not in key" (Table 1).
   * ``log p/step``: the mean of ``info["log_prob"]`` (nats) over all steps.

   Done when, in every key, ``out of key %`` is at most C major's + 0.2 points and ``log p/step``
   within 0.05 nats of C major's.

2. **Held-out melodies.** The ``airdsAirs`` collection (never trained on; the held-out split of
   the shipped model's corpus, read from the corpus cache) is split into major (C major) and minor
   (A minor) melodies by the Krumhansl-Kessler profile correlation of their duration-weighted
   pitch classes (the corpus is already in one of the two). Each melody, cut to at most
   ``--max-length`` tokens, is transposed to each key of its mode by the interval that moves C
   (A) to the key's tonic, -5..+6 semitones as the env itself shifts, notes folded by octaves
   into the range like the corpus (:func:`~melody_env.music.transposition.transpose_tokens`),
   and played through the vector env in that key: its first token is the primer, the others the
   actions.

   * ``CE``: cross-entropy, the mean of ``-info["log_prob"]`` over all played tokens (nats/token).
   * ``folded %``: notes the transposition folded by an octave.

   Done when, in every key, ``CE`` is within 0.05 nats/token of C major's (A minor's for minor
   keys).

With ``--untransposed`` each table also gives the numbers of the reward RNN reading the melody as
played (the envs before the transposition), for comparison. Prints markdown tables.

    python benchmarks/key_fidelity.py                       # the full measurement
    python benchmarks/key_fidelity.py --n 1000 --untransposed   # smaller, with the old numbers
    python benchmarks/key_fidelity.py --quick                # a smoke test (tiny sizes)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from melody_env import MelodyCompositionVectorEnv
from melody_env.envs import composition_state
from melody_env.models import NoteRNN
from melody_env.music.encoding import NUM_CLASSES, NUM_SPECIAL_EVENTS, TOKEN_PITCHES
from melody_env.music.keys import KEY_NAMES, Key
from melody_env.music.transposition import READING_TABLES, reference_shift, transpose_tokens

COLLECTIONS = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
HELD_OUT = "airdsAirs"
OUT_OF_KEY_BAR = 0.2  # percentage points above C major
LOG_P_BAR = 0.05  # nats per step from C major
CE_BAR = 0.05  # nats per token from the reference key

# Krumhansl-Kessler key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


@contextlib.contextmanager
def untransposed(enabled: bool) -> Iterator[None]:
    """Inside, the envs' reward RNN reads melodies as played (as before the transposition)."""
    if not enabled:
        yield
        return
    with mock.patch.object(composition_state.KeyReading, "for_keys", return_value=None):
        yield


def sample_untuned(rnn: NoteRNN, key: Key, n: int, batch: int, seed: int) -> dict[str, float]:
    """Out-of-key % and mean log p per step of ``n`` untuned compositions in ``key``, with their
    standard errors (over compositions). The random draws are made in the reference key (see
    the module doc), so a ``seed`` gives every key the same draws."""
    rng = np.random.default_rng(seed)
    reading = READING_TABLES[key.index]
    unread = np.argsort(reading)  # the token read as each reference token
    out_counts, step_counts, log_p_means = [], [], []
    for start in range(0, n, batch):
        size = min(batch, n - start)
        envs = MelodyCompositionVectorEnv(size, key=key, reward_rnn=rnn, copy=False)
        primers = unread[rng.integers(0, NUM_CLASSES, size=size)][:, None]  # uniform, as default
        _, info = envs.reset(seed=0, options={"primer": primers})
        log_p = np.zeros(size)
        for _ in range(envs.layout.composition_length):
            noise = rng.gumbel(size=(size, NUM_CLASSES))[:, reading]
            actions = (info["prior_log_probs"] + noise).argmax(axis=1)
            *_, info = envs.step(actions)
            log_p += info["log_prob"]
        tokens = envs.compositions
        notes = tokens >= NUM_SPECIAL_EVENTS
        outside = notes & ~key.scale_mask[TOKEN_PITCHES[tokens] % 12]
        out_counts.append(outside.sum(axis=1))
        step_counts.append(np.full(size, tokens.shape[1]))  # per step, as Table 1 counts
        log_p_means.append(log_p / tokens.shape[1])
    out, steps = np.concatenate(out_counts), np.concatenate(step_counts)
    log_p = np.concatenate(log_p_means)
    rate = out.sum() / steps.sum()
    # The ratio estimator's standard error, compositions as the independent units.
    rate_se = np.std(out - rate * steps, ddof=1) / (steps.mean() * np.sqrt(len(steps)))
    return {
        "out_of_key": 100.0 * rate,
        "out_of_key_se": 100.0 * rate_se,
        "log_p": float(log_p.mean()),
        "log_p_se": float(np.std(log_p, ddof=1) / np.sqrt(len(log_p))),
    }


def melody_mode(tokens: np.ndarray) -> str:
    """``"major"`` (C major) or ``"minor"`` (A minor): the better Krumhansl-Kessler correlation
    of the melody's pitch classes weighted by duration (steps until the next event)."""
    events = np.flatnonzero(tokens != 0)
    durations = np.diff(np.append(events, len(tokens)))
    weights = np.zeros(12)
    for index, duration in zip(events, durations, strict=True):
        if tokens[index] >= NUM_SPECIAL_EVENTS:
            weights[TOKEN_PITCHES[tokens[index]] % 12] += duration
    major = np.corrcoef(weights, MAJOR_PROFILE)[0, 1]
    minor = np.corrcoef(weights, np.roll(MINOR_PROFILE, 9))[0, 1]
    return "major" if major >= minor else "minor"


def load_heldout(max_length: int) -> dict[str, list[np.ndarray]]:
    """Held-out melodies (at most ``max_length`` tokens each) by mode."""
    from melody_env.data import corpus
    from melody_env.data.splits import load_splits

    for name in COLLECTIONS:  # never start a long extraction from here
        path = corpus.cache_path(name, None, None)
        if not path.exists():
            raise SystemExit(f"no corpus cache at {path}: extract the corpus first")
    splits, _ = load_splits(COLLECTIONS, held_out=HELD_OUT, progress=False)
    by_mode: dict[str, list[np.ndarray]] = {"major": [], "minor": []}
    for melody in splits["heldout"].melodies:
        melody = np.asarray(melody[:max_length], dtype=np.int64)
        if len(melody) >= 2:
            by_mode[melody_mode(melody)].append(melody)
    return by_mode


def fits(melody: np.ndarray, semitones: int) -> bool:
    """Whether every note of ``melody`` stays in MIDI 48..83 when moved by ``semitones``."""
    pitches = TOKEN_PITCHES[melody[melody >= NUM_SPECIAL_EVENTS]] + semitones
    return bool(pitches.size == 0 or (pitches.min() >= 48 and pitches.max() <= 83))


def move(melody: np.ndarray, key: Key, octave: bool) -> np.ndarray:
    """``melody`` (in the reference key of ``key``'s mode) moved to ``key`` by the env's own
    interval, notes folded by octaves into the range; with ``octave``, by the interval an octave
    away instead when only that one keeps every note in the range."""
    semitones = -reference_shift(key)
    other = semitones - 12 if semitones > 0 else semitones + 12
    if octave and semitones and not fits(melody, semitones) and fits(melody, other):
        semitones = other
    return transpose_tokens(melody, semitones)


def heldout_log_probs(rnn: NoteRNN, melodies: list[np.ndarray], key: Key, batch: int):
    """Per melody, the sum of ``-info["log_prob"]`` over its tokens after the first (the
    primer) in the vector env in ``key``, and the number of those tokens."""
    order = np.argsort([len(m) for m in melodies], kind="stable")
    sums, counts = np.zeros(len(melodies)), np.zeros(len(melodies))
    for start in range(0, len(order), batch):
        rows = order[start : start + batch]
        group = [melodies[index] for index in rows]
        length = max(len(m) for m in group) - 1
        actions = np.zeros((len(group), length), dtype=np.int64)  # holds after each melody's end
        played = np.zeros((len(group), length), dtype=bool)
        for row, melody in enumerate(group):
            actions[row, : len(melody) - 1] = melody[1:]
            played[row, : len(melody) - 1] = True
        envs = MelodyCompositionVectorEnv(
            len(group), key=key, reward_rnn=rnn, composition_length=length, copy=False
        )
        envs.reset(seed=0, options={"primer": [m[:1] for m in group]})
        for step in range(length):
            _, _, _, _, info = envs.step(actions[:, step])
            sums[rows] -= np.where(played[:, step], info["log_prob"], 0.0)
        counts[rows] = played.sum(axis=1)
    return sums, counts


def untuned_table(rnn: NoteRNN, args: argparse.Namespace) -> list[str]:
    """Per key: common draws (the seed shared by all keys) and independent draws (a seed per
    key), each against C major's draws of the same kind."""
    results = {}
    for index, name in enumerate(KEY_NAMES):
        key = Key.from_name(name)
        results["common", name] = sample_untuned(rnn, key, args.n, args.batch, args.seed)
        if not args.common_only:
            seed = args.seed + 1 + index
            results["independent", name] = sample_untuned(rnn, key, args.n, args.batch, seed)
        if args.untransposed:
            with untransposed(True):
                results["old", name] = sample_untuned(rnn, key, args.n, args.batch, args.seed)
    bases = {kind: results.get((kind, "C major")) for kind in ("common", "independent")}
    base = bases["common"]
    header = "| key | out of key % | Δ (pts) | log p/step | Δ (nats) |"
    if not args.common_only:
        header += " independent: out of key % | Δ ± SE (pts) | log p/step | Δ ± SE (nats) |"
    if args.untransposed:
        header += " untransposed: out of key % | log p/step |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    worst = {"common": [0.0, 0.0], "independent": [0.0, 0.0]}
    worst_z = 0.0  # independent draws: the largest |difference| / its standard error
    for name in KEY_NAMES:
        line = f"| {name} |"
        for kind in ("common", "independent"):
            if kind == "independent" and args.common_only:
                continue
            row, base = results[kind, name], bases[kind]
            d_out, d_log_p = row["out_of_key"] - base["out_of_key"], row["log_p"] - base["log_p"]
            worst[kind] = [max(worst[kind][0], d_out), max(worst[kind][1], abs(d_log_p))]
            if kind == "independent" and name == "C major":
                line += f" {row['out_of_key']:.2f} | (base) | {row['log_p']:.3f} | (base) |"
            elif kind == "common":
                line += f" {row['out_of_key']:.2f} | {d_out:+.2f} | {row['log_p']:.3f} |"
                line += f" {d_log_p:+.3f} |"
            else:
                se_out = np.hypot(row["out_of_key_se"], base["out_of_key_se"])
                se_log_p = np.hypot(row["log_p_se"], base["log_p_se"])
                worst_z = max(worst_z, abs(d_out) / se_out, abs(d_log_p) / se_log_p)
                line += f" {row['out_of_key']:.2f} | {d_out:+.2f} ± {se_out:.2f} |"
                line += f" {row['log_p']:.3f} | {d_log_p:+.3f} ± {se_log_p:.3f} |"
        if args.untransposed:
            old = results["old", name]
            line += f" {old['out_of_key']:.2f} | {old['log_p']:.3f} |"
        lines.append(line)
    lines.append("")
    for kind, base in bases.items():
        if base is not None:
            lines.append(
                f"C major ({kind} draws): out of key {base['out_of_key']:.2f}% "
                f"(SE {base['out_of_key_se']:.2f}), log p/step {base['log_p']:.3f} "
                f"(SE {base['log_p_se']:.3f})."
            )
    for kind, (d_out, d_log_p) in worst.items():
        if kind == "independent" and args.common_only:
            continue
        verdict = d_out <= OUT_OF_KEY_BAR and d_log_p <= LOG_P_BAR
        lines.append(
            f"Worst key, {kind} draws: out of key {d_out:+.2f} points (bar +{OUT_OF_KEY_BAR}), "
            f"log p/step {d_log_p:.3f} nats from C major (bar {LOG_P_BAR}): "
            f"{'PASS' if verdict else 'FAIL'}"
        )
    if not args.common_only:
        lines.append(
            f"Independent draws: the largest difference from C major is {worst_z:.1f} standard "
            "errors (23 keys x 2 statistics: with pure sampling noise the largest exceeds 3"
            " standard errors in about one run in eight)."
        )
    return lines


def heldout_table(rnn: NoteRNN, args: argparse.Namespace) -> list[str]:
    """Per key: the held-out melodies of its mode moved there (see the module doc), their
    cross-entropy through the env against the reference key's, on all melodies and on those
    the move keeps in range; optionally moved in the octave that keeps them in range, and read
    as played."""
    by_mode = load_heldout(args.max_length)
    if args.melodies:
        by_mode = {mode: melodies[: args.melodies] for mode, melodies in by_mode.items()}
    header = (
        "| key | melodies | folded % | CE | Δ (nats) | in range: melodies | CE | Δ (nats) |"
        " octave kept in range: CE | Δ (nats) |"
    )
    if args.untransposed:
        header += " read as played: CE |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    worst = {"all": 0.0, "in range": 0.0, "octave": 0.0}
    for mode, reference in (("major", "C major"), ("minor", "A minor")):
        melodies = by_mode[mode]
        base_sums, base_counts = heldout_log_probs(
            rnn, melodies, Key.from_name(reference), args.batch
        )
        base = base_sums.sum() / base_counts.sum()
        for name in KEY_NAMES:
            if not name.endswith(mode):
                continue
            key = Key.from_name(name)
            semitones = -reference_shift(key)
            moved = [move(m, key, octave=False) for m in melodies]
            sums, counts = heldout_log_probs(rnn, moved, key, args.batch)
            notes = np.concatenate([m[m >= NUM_SPECIAL_EVENTS] for m in melodies])
            folded = 100.0 * np.mean(transpose_tokens(notes, semitones) != notes + semitones)
            inside = np.array([fits(m, semitones) for m in melodies])
            ce = sums.sum() / counts.sum()
            ce_in = sums[inside].sum() / counts[inside].sum()
            base_in = base_sums[inside].sum() / base_counts[inside].sum()
            octave = [move(m, key, octave=True) for m in melodies]
            octave_sums, octave_counts = heldout_log_probs(rnn, octave, key, args.batch)
            ce_octave = octave_sums.sum() / octave_counts.sum()
            for kind, delta in (
                ("all", ce - base),
                ("in range", ce_in - base_in),
                ("octave", ce_octave - base),
            ):
                worst[kind] = max(worst[kind], abs(delta))
            line = (
                f"| {name} | {len(melodies)} | {folded:.2f} | {ce:.4f} | {ce - base:+.4f} | "
                f"{int(inside.sum())} | {ce_in:.4f} | {ce_in - base_in:+.4f} | "
                f"{ce_octave:.4f} | {ce_octave - base:+.4f} |"
            )
            if args.untransposed:
                with untransposed(True):
                    old_sums, old_counts = heldout_log_probs(rnn, moved, key, args.batch)
                line += f" {old_sums.sum() / old_counts.sum():.4f} |"
            lines.append(line)
    lines.append("")
    for kind, label in (
        ("all", "all melodies, folded into the range"),
        ("in range", "melodies the move keeps in range (against the same melodies)"),
        ("octave", "all melodies, each in the octave that keeps it in range where one does"),
    ):
        verdict = "PASS" if worst[kind] <= CE_BAR else "FAIL"
        lines.append(
            f"Worst key, {label}: {worst[kind]:.4f} nats/token from the reference key "
            f"(bar {CE_BAR}): {verdict}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="untuned compositions per key")
    parser.add_argument("--batch", type=int, default=1_000, help="envs per vector env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=512, help="tokens per held-out melody")
    parser.add_argument(
        "--melodies", type=int, default=0, help="held-out melodies per mode (0: all)"
    )
    parser.add_argument("--untransposed", action="store_true", help="also the old numbers")
    parser.add_argument("--common-only", action="store_true", help="untuned: only the common draws")
    parser.add_argument("--skip-untuned", action="store_true")
    parser.add_argument("--skip-heldout", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.batch, args.melodies, args.max_length = 64, 64, 8, 64
    rnn = NoteRNN.load()
    started = time.perf_counter()
    if not args.skip_untuned:
        print(
            f"## Untuned Note RNN, {args.n:,} compositions of 32 steps per key (seed {args.seed})"
        )
        print()
        print("\n".join(untuned_table(rnn, args)))
        print()
    if not args.skip_heldout:
        print(f"## Held-out melodies ({HELD_OUT}, at most {args.max_length} tokens each)")
        print()
        print("\n".join(heldout_table(rnn, args)))
        print()
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
