"""The 5-gram judge (quality, coverage), its shipped corpus, and the music rows of evaluate()."""

from __future__ import annotations

import numpy as np
import pytest

from melody_env.data.ngram import KneserNeyModel
from melody_env.evaluation import evaluate, judge, music_summary
from melody_env.evaluation.judge import JudgeCorpus
from melody_env.evaluation.policies import NoteRNNPolicy
from melody_env.evaluation.report import build_report, render_markdown
from melody_env.models import NoteRNN


def scale_melody(rng: np.random.Generator, length: int = 64) -> np.ndarray:
    """A random walk on the C major scale, notes two or four sixteenths long."""
    degrees = np.array([14, 16, 18, 19, 21, 23, 25, 26])  # C4..C5
    out: list[int] = []
    step = int(rng.integers(0, 8))
    while len(out) < length:
        step = int(np.clip(step + rng.integers(-2, 3), 0, 7))
        out += [int(degrees[step])] + [0] * int(rng.choice([1, 3]))
    return np.array(out[:length])


@pytest.fixture(scope="module")
def corpus() -> JudgeCorpus:
    rng = np.random.default_rng(0)
    return JudgeCorpus(
        [scale_melody(rng) for _ in range(200)], [scale_melody(rng, 70) for _ in range(20)], {}
    )


def test_windows_are_consecutive_and_drop_the_remainder():
    windows = judge.corpus_windows([np.arange(70) % 38, np.arange(31)], length=32)
    assert windows.shape == (2, 32)  # 70 tokens: two windows, 6 dropped; 31 tokens: none
    np.testing.assert_array_equal(windows[1], np.arange(32, 64) % 38)


def test_quality_scores_every_token_but_the_first_of_each_composition(corpus):
    tokens = np.array([scale_melody(np.random.default_rng(seed), 32) for seed in range(5)])
    columns = judge.quality_columns(tokens, corpus)
    assert columns["judge_tokens"].tolist() == [31] * 5
    log_probs, _ = corpus.model.predict(list(tokens))
    np.testing.assert_allclose(columns["judge_nll"], -log_probs.reshape(5, 31).sum(axis=1))
    assert judge.quality(tokens, corpus) == pytest.approx(-log_probs.mean())


def test_coverage_fits_on_the_compositions_and_scores_the_test_windows(corpus):
    tokens = np.array([scale_melody(np.random.default_rng(seed), 32) for seed in range(300)])
    model = KneserNeyModel(judge.JUDGE_ORDER).fit(list(tokens))
    expected = -model.predict(list(corpus.windows))[0].mean()
    assert judge.coverage(tokens, corpus) == pytest.approx(expected)
    # A set collapsed onto one tune covers the corpus far worse, though its tune is likely.
    collapsed = np.repeat(tokens[:1], 300, axis=0)
    assert judge.coverage(collapsed, corpus) > judge.coverage(tokens, corpus) + 0.5
    assert judge.quality(collapsed, corpus) < 3.0


def test_set_statistics_name_every_set_level_row(corpus):
    tokens = np.array([scale_melody(np.random.default_rng(seed), 32) for seed in range(20)])
    stats = music_summary.set_statistics(tokens, "C major", corpus)
    set_rows = {
        row.name
        for row in music_summary.MUSIC_ROWS
        if row.name not in {s.name for s in music_summary.MUSIC_STATISTICS}
        and not row.name.startswith("greedy_")
    }
    assert set(stats) == set_rows
    assert stats["pitch_class_overlap"] > 0.8  # same scale, same key


def test_shipped_corpus_loads_and_is_the_documented_split():
    corpus = judge.load_judge_corpus()
    assert corpus.info["held_out"] == "airdsAirs"
    assert len(corpus.train) > 10 * len(corpus.test) > 0
    assert all(len(m) >= 32 for m in corpus.test)
    assert len(corpus.windows) >= len(corpus.test)


def test_evaluate_adds_the_music_rows_for_sampled_and_greedy_actions():
    result = evaluate(
        NoteRNNPolicy(), n=300, seed=0, reward_rnn=NoteRNN.load(), greedy_diversity=True
    )
    for row in music_summary.MUSIC_ROWS:
        assert np.isfinite(result.summary[row.name].value), row.name
    assert result.summary["kl"].value == 0.0
    # The greedy Note RNN writes far fewer distinct compositions than sampling does.
    assert result.summary["greedy_distinct_compositions"].value < 0.5 * (
        result.summary["distinct_compositions"].value
    )
    assert result.greedy_tokens is not None and result.greedy_tokens.shape == (300, 32)
    # The untuned Note RNN is corpus-like: 0.96, 1.44 and 1.16 on 2,000 compositions (seed 0);
    # a uniform random policy scores 0.37, 4.87 and 3.42.
    assert result.summary["interval_overlap"].value > 0.9
    assert 1.3 < result.summary["judge_quality"].value < 1.7
    assert 1.0 < result.summary["judge_coverage"].value < 1.5
    text = render_markdown(build_report([result]))
    assert "## Diversity" in text and "## Exploit watch" in text and "greedy" in text


def test_fast_token_scores_equal_the_full_distributions(corpus):
    melodies = [np.random.default_rng(seed).integers(0, 38, 40) for seed in range(5)]
    melodies += [scale_melody(np.random.default_rng(seed), 40) for seed in range(5)]
    expected, _ = corpus.model.predict(melodies)
    np.testing.assert_allclose(corpus.model.log_probs(melodies), expected, rtol=1e-12)
    assert np.isfinite(expected).all()  # unseen tokens keep a positive probability
    with pytest.raises(ValueError, match="tokens must be in"):
        corpus.model.log_probs([np.array([3, 38])])


def test_a_collapsed_training_set_still_gives_every_token_a_probability():
    # Bigram counts: 20 continuations of token 14 seen 4 times each, one bigram seen once,
    # twice and three times: Chen & Goodman's D3+ = 3 - 4 * (1/3) * 20 < 0. Without the
    # discount floor context 14 keeps no back-off mass and an unseen token after it gets p = 0.
    melodies = [np.array([14, t]) for t in range(16, 36) for _ in range(4)]
    melodies += [np.array([5, 6]), *[np.array([7, 8])] * 2, *[np.array([9, 10])] * 3]
    model = KneserNeyModel(order=2).fit(melodies)
    assert model.levels[-1].discounts[3] >= 0.1
    assert np.isfinite(model.log_probs([np.array([14, 2])])).all()
