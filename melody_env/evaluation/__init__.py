"""Evaluating melody policies: the RL Tuner's music-theory statistics (the paper's Table 1), more.

Layers, each importing only those before it:

- :mod:`~melody_env.evaluation.metrics`: pure functions of finished compositions. They replay the
  compositions through the env's own engine (:class:`~melody_env.envs.composition_state.
  CompositionState` and the reward rules), so a statistic and the reward that drives it share one
  implementation.
- :mod:`~melody_env.evaluation.music`: pure statistics of token arrays that see the music:
  diversity, an exploit watch, pitch-class/interval/duration histograms and their overlap.
- :mod:`~melody_env.evaluation.judge`: an independent Kneser-Ney 5-gram judge of data-likeness
  (quality and coverage) on the shipped corpus splits (``data/judge_corpus.npz``);
  :mod:`~melody_env.evaluation.music_summary` turns both into report rows.
- :mod:`~melody_env.evaluation.stats`: rates with bootstrap confidence intervals, mean ± std
  across training seeds.
- :mod:`~melody_env.evaluation.policies`: the Note RNN sampled at temperature 1, a uniform random
  policy, and a loader registry turning a checkpoint path into a policy with SB3's ``predict``.
- :mod:`~melody_env.evaluation.evaluate`: :func:`evaluate` samples ``n`` compositions from any
  policy, batched, and scores them.
- :mod:`~melody_env.evaluation.report`, :mod:`~melody_env.evaluation.plots`,
  :mod:`~melody_env.evaluation.export`: Table-1 style markdown/JSON, PNG figures, MIDI/WAV/MusicXML.
"""

from melody_env.evaluation.evaluate import EvaluationResult, evaluate
from melody_env.evaluation.metrics import score_compositions
from melody_env.evaluation.policies import NoteRNNPolicy, RandomPolicy, load_policy
from melody_env.evaluation.stats import Estimate, summarize

__all__ = [
    "Estimate",
    "EvaluationResult",
    "NoteRNNPolicy",
    "RandomPolicy",
    "evaluate",
    "load_policy",
    "score_compositions",
    "summarize",
]
