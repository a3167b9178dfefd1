"""The model card of a shipped Note RNN checkpoint, generated from its run report."""

from __future__ import annotations

from melody_env.data.corpus import PUBLIC_DOMAIN_COLLECTIONS
from melody_env.models.evaluation import markdown_table

LICENCES = {
    "essenFolksong": (
        "Essen Folksong Collection (EsAC, ABC by Seymour Shlien). music21's notice: legal status "
        "unclear; permission was given for non-commercial distribution and use in music21. "
        "**Non-commercial use only.**"
    ),
    "oneills1850": "O'Neill's Music of Ireland: 1850 Melodies (Chicago, 1903); public domain.",
    "ryansMammoth": "Ryan's Mammoth Collection (Boston, 1883); public domain.",
    "airdsAirs": (
        "Aird's Selection of Scotch, English, Irish and Foreign Airs (Glasgow, 1782-1803); "
        "public domain."
    ),
    "miscFolk": (
        "American fife tunes and Bruce & Stokoe's Northumbrian Minstrelsy (1882), ABC by Jack "
        "Campin; public domain."
    ),
}


KEYS_SECTION = """\
## What the prior knows: keys

The corpus is transposed to C major (major tunes) and A minor (minor tunes) before training,
so the model knows those two keys only. Read as played, a melody in G major looks to it like a
C major melody full of F sharps: held-out melodies moved to other keys and read as played cost
up to 1.7 nats/token more than in C major, and its log p pulls an agent toward C major while
the key rule pulls it into the key.

The envs therefore read every melody to it in the *reference key* of the episode's mode (C
major for major keys, A minor for minor ones) and map its 38 log-probabilities back
(`melody_env/music/transposition.py`). The reading moves each note by the key's shift, the
interval of -6..+5 semitones that takes its tonic to C (or A), the one the corpus extraction
used, on a ring of three octaves: the |shift| notes that would leave MIDI 48..83 come back at
the other edge in the same pitch class (in G major, shift +5, G4 is read as C5 and B5 as E3).
Hold and rest are read as themselves. The mapping back is the same permutation of the 38
tokens, so in every key the model scores a melody exactly as it scores its reading in C major
or A minor: the same numbers, a distribution over the 38 playable tokens, and C major and A
minor unchanged bit for bit. The single env, the vector env, the evaluation, the agents' priors
(`info["prior_log_probs"]`) and the RL Tuner agent's own networks all read the same way.

Limits: the model still knows one register of each key. The |shift| wrapped notes are read three
octaves away, so a step across the boundary between them and the rest (F#5 to G5 in G major) is
scored as a leap of nearly three octaves, and melodies that use them score worse than their
reference-key readings would suggest. Its minor is the corpus's minor tunes, as music21's key
analysis labelled them.

Measured with `python benchmarks/key_fidelity.py` (see its docstring for the definitions).
"""
"""The card's section on keys (the envs' reading of other keys), before the measurements."""


def model_card(
    report: dict, checkpoint_bytes: int, notes: str = "", key_measurements: str = ""
) -> str:
    """Markdown model card: data and licences, splits, metrics, provenance, keys.

    Args:
        report: the run's ``report.json``.
        checkpoint_bytes: size of the shipped checkpoint.
        notes: extra markdown appended under "Notes" (e.g. facts the report does not hold).
        key_measurements: markdown appended to :data:`KEYS_SECTION` (the output of
            ``benchmarks/key_fidelity.py`` for this checkpoint).
    """
    corpus = report["corpus"]
    config = report["config"]
    collections = corpus["collections"]
    non_commercial = [c for c in collections if c not in PUBLIC_DOMAIN_COLLECTIONS]
    use = (
        "**Research and non-commercial use only**: the training data include "
        + ", ".join(non_commercial)
        + ", licensed for non-commercial use. To get an unencumbered model, retrain on the "
        "public-domain collections only (`--collections "
        + " ".join(PUBLIC_DOMAIN_COLLECTIONS)
        + "`)."
        if non_commercial
        else "All training data are public domain."
    )
    seconds = report["seconds"]
    machine = report["machine"]
    history = report["training"]["history"]
    stats = corpus["collection_stats"]
    lines = [
        "# Note RNN (pretrained melody LSTM)",
        "",
        "The next-token model of the RL Tuner (Jaques et al. 2017): one-hot tokens (38) -> "
        f"LSTM ({config['num_layers']} layer, {config['hidden_size']} units) -> 38 logits, "
        "over the 38-token melody encoding on a sixteenth-note grid (0 = hold, 1 = rest, "
        f"2..37 = MIDI 48..83). {checkpoint_bytes / 1024:.0f} KB, safetensors; "
        "load with `NoteRNN.load()`.",
        "",
        "## Intended use and licence",
        "",
        use,
        "",
        "## Data",
        "",
        "Monophonic folk melodies from music21's bundled ABC corpus (music21 "
        "`analyze('key')` transposition: major to C major, minor to A minor; octaves folded into "
        "MIDI 48..83; quantised to sixteenths; melodies shorter than "
        f"{corpus['extraction']['min_steps']} steps or with fewer than "
        f"{corpus['extraction']['min_distinct_pitches']} distinct pitches dropped).",
        "",
        "| collection | role | tunes | kept | parse failures | licence |",
        "|---|---|---|---|---|---|",
    ]
    for name in collections:
        role = "held out (evaluation only)" if name == corpus["held_out"] else "train/val/test"
        s = stats[name]
        lines.append(
            f"| {name} | {role} | {s['tunes']} | {s['kept']} | {s['parse_failed']} | "
            f"{LICENCES[name]} |"
        )
    if all("seconds" in stats[name] for name in collections):
        total = sum(stats[name]["seconds"] for name in collections)
        lines += [
            "",
            f"Extracting these collections took {total:.0f} s with "
            f"{config['processes']} processes (cached afterwards).",
        ]
    lines += [
        "",
        "Splits are by piece, from a hash of `collection/piece id` (90/5/5 train/validation/"
        "test over the training collections); the held-out collection is never trained on. "
        "Evaluation melodies that exactly copy a training melody are removed ("
        + ", ".join(f"{n} from {k}" for k, n in corpus["evaluation_duplicates_removed"].items())
        + "). The public-domain books' ABC transcriptions were made by volunteers and ship "
        "with music21 under its corpus notice (`music21/corpus/license.txt`).",
        "",
        "| split | pieces | tokens |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v['pieces']} | {v['tokens']} |" for k, v in corpus["splits"].items()]
    lines += [
        "",
        "## Metrics",
        "",
        "Every melody is scored from its start (zero LSTM state; BOS-padded n-gram context); "
        "every model scores the same tokens (all but each melody's first). Note-event accuracy "
        "is the accuracy on targets other than hold (onsets and rests). n-grams: interpolated "
        "modified Kneser-Ney, fit on the same training split.",
        "",
        markdown_table(report["results"]),
        "",
        f"On {report['margin_split']}, the LSTM's cross-entropy is "
        f"**{report['margin_over_best_ngram']:.1%} lower** than the best n-gram's "
        f"({report['best_ngram']}).",
        "",
        "## Training",
        "",
        f"Adam (peak lr {config['lr']}, {config['lr_schedule']} schedule, {config['warmup_steps']} "
        f"warm-up steps), global grad-norm clip {config['grad_clip']}, weight decay "
        f"{config['weight_decay']}, batch {config['batch_size']} lanes x {config['window']}-step "
        f"truncated-BPTT windows, {len(history)} epochs ({report['training']['steps']} steps), "
        f"seed {config['seed']}, torch CPU threads: {config['threads']}.",
        "",
        f"Final validation loss {history[-1].get('validation_loss', float('nan')):.4f} nats/token.",
        "",
        "Made with:",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Training took {seconds['training'] / 60:.1f} min (corpus loading "
        f"{seconds['corpus']:.0f} s, from the cache if warm; n-gram baselines "
        f"{seconds['ngrams']:.0f} s) on {machine['processor']} "
        f"({machine['cpu_count']} cores, {machine['platform']}), Python {machine['python']}, "
        f"torch {machine['torch']}, CPU only. The full report is `note_rnn.json`.",
        "",
    ]
    lines += [KEYS_SECTION]
    if key_measurements:
        lines += [key_measurements.strip(), ""]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)
