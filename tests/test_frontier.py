"""The reward–KL frontier: a smoke run with tiny budgets, the Pareto set and the outputs."""

from __future__ import annotations

import csv
import json

import pytest

from agents.baselines.frontier import (
    CSV_COLUMNS,
    FRONTIER_ALGOS,
    FrontierConfig,
    pareto_optimal,
    run_frontier,
)
from agents.cli import main


def test_pareto_optimal_by_hand():
    points = {
        ("q", 1.0): (-1.0, 0.2),  # dominated by ("g", 1.0): more reward, less KL
        ("g", 1.0): (-0.5, 0.1),
        ("q", 2.0): (0.5, 0.9),  # the most reward
        ("g", 2.0): (0.5, 1.2),  # same reward, more KL: dominated
        ("rloo", 0.1): (-2.0, 0.05),  # the least KL
        ("psi", 1.0): (float("nan"), 0.01),  # unknown reward: never optimal
    }
    assert pareto_optimal(points) == {("g", 1.0), ("q", 2.0), ("rloo", 0.1)}


def test_every_algorithm_has_at_least_four_values_and_a_documented_knob():
    for algo in FRONTIER_ALGOS.values():
        assert len(algo.values) >= 4
        assert algo.knob in ("env.reward_scaler", "kl_coef")
        assert algo.family in ("train", "sb3")


def test_config_refuses_unknown_algorithms_and_bad_values():
    with pytest.raises(ValueError, match="unknown algorithms"):
        FrontierConfig(algos=("q", "sarsa"))
    with pytest.raises(ValueError, match="positive"):
        FrontierConfig(algos=("q",), values={"q": (0.0, 1.0)})
    assert main(["frontier", "--algos", "nope", "--out", "x"]) == 2


def tiny_sweep(q: tuple[float, ...]) -> FrontierConfig:
    """Q at the values ``q`` and PPO at s = 2, seed 0, 256 steps each, 12 compositions."""
    return FrontierConfig(
        algos=("q", "sb3-ppo"),
        seeds=(0,),
        total_steps=256,
        eval_n=12,
        jobs=1,
        values={"q": q, "sb3-ppo": (2.0,)},
    )


def test_a_tiny_sweep_writes_every_point_and_the_outputs(tmp_path):
    config = tiny_sweep(q=(0.5, 2.0))
    results = run_frontier(config, tmp_path, log=lambda message: None)
    assert [p["point"]["value"] for p in results["points"]] == [0.5, 2.0, 2.0]
    assert not any("error" in p for p in results["points"])
    for point in results["points"]:
        stats = point["statistics"]
        assert stats["kl"] is not None and stats["judge_coverage"] is not None
        assert stats["greedy_distinct_openings"] is not None
    with open(tmp_path / "frontier.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and set(rows[0]) == set(CSV_COLUMNS)  # 3 points + the Note RNN
    saved = json.loads((tmp_path / "frontier.json").read_text())
    assert saved["pareto_optimal"]
    assert "## Reward–KL frontier" in (tmp_path / "frontier.md").read_text()
    assert "| goals met |" in (tmp_path / "frontier.md").read_text()
    assert "- q reward_scaler = 0.5: " in (tmp_path / "frontier.md").read_text()
    assert (tmp_path / "frontier.png").stat().st_size > 0
    # A finished point is not run again: the same sweep only re-reads its records.
    again = run_frontier(config, tmp_path, log=lambda message: None)
    assert again["points"] == results["points"]
    # A report of what is there, whatever the config names: all three points, nothing trained.
    only_q = FrontierConfig(algos=("q",), seeds=(0,), total_steps=256, eval_n=12, jobs=1)
    report = run_frontier(only_q, tmp_path, log=lambda message: None, report_only=True)
    assert sorted(map(json.dumps, report["points"])) == sorted(map(json.dumps, results["points"]))
    markdown = (tmp_path / "frontier.md").read_text()
    assert "## Every algorithm at its default: Table 1 and the music" in markdown
    assert "sb3-ppo (1 seed)" in markdown and "q (1 seed)" in markdown


def test_an_unfinished_point_is_resumed_or_set_aside_not_evaluated_as_it_is(tmp_path):
    config = tiny_sweep(q=(2.0,))
    first = run_frontier(config, tmp_path, log=lambda message: None)
    q_run, ppo_run = (tmp_path / p.name for p in config.points())
    # As a stop leaves them: the Q run has its checkpoint but no summary; the SB3 run has a
    # partial model.zip (here: junk that cannot load) and no summary.
    for run in (q_run, ppo_run):
        (run / "point.json").unlink()
        (run / "summary.json").unlink()
    (ppo_run / "model.zip").write_bytes(b"a stopped run's partial model")
    again = run_frontier(config, tmp_path, log=lambda message: None)
    assert not any("error" in p for p in again["points"]), again["points"]
    assert again["points"][0]["statistics"] == first["points"][0]["statistics"]  # resumed Q
    assert (q_run / "summary.json").is_file()
    set_aside = ppo_run.with_name("seed0.unfinished")
    assert (set_aside / "model.zip").read_bytes() == b"a stopped run's partial model"
    assert (ppo_run / "summary.json").is_file() and (ppo_run / "point.json").is_file()


MEETS_EVERY_GOAL = {
    "excessively_repeated": 0.001,
    "not_in_key": 0.005,
    "starts_with_tonic": 0.5,
    "leaps_resolved": 0.92,
    "unique_max": 0.65,
    "unique_min": 0.58,
    "in_motif": 0.77,
    "in_repeated_motif": 0.01,
    "autocorrelation_lag1": -0.10,
    "autocorrelation_lag2": 0.10,
    "autocorrelation_lag3": 0.0,
    "compositions": 2000,
    "distinct_openings": 800,
    "top_opening_share": 0.10,
    "interval_overlap": 0.85,
    "judge_coverage": 1.7,
    "judge_quality": 2.0,
}


@pytest.mark.parametrize(
    ("name", "missing_value"),
    [
        ("excessively_repeated", 0.0011),
        ("not_in_key", 0.0051),
        ("starts_with_tonic", 0.499),
        ("leaps_resolved", 0.919),
        ("unique_max", 0.649),
        ("unique_min", 0.579),
        ("in_motif", 0.769),
        ("in_repeated_motif", 0.0101),
        ("autocorrelation_lag1", -0.101),
        ("autocorrelation_lag2", 0.101),
        ("autocorrelation_lag3", 0.101),
        ("distinct_openings", 799),
        ("top_opening_share", 0.101),
        ("interval_overlap", 0.849),
        ("judge_coverage", 1.701),
        ("judge_quality", 2.001),
    ],
)
def test_goals_met_at_each_boundary_and_missed_just_past_it(name, missing_value):
    from agents.baselines.frontier_report import goals_met

    note_rnn, q = {"judge_coverage": 1.2}, {"judge_quality": 2.0}
    met = goals_met(MEETS_EVERY_GOAL, note_rnn, q)
    assert len(met) == 16 and all(met.values())
    missed = goals_met({**MEETS_EVERY_GOAL, name: missing_value}, note_rnn, q)
    assert [goal for goal, ok in missed.items() if not ok] == [name]
    absent = {key: value for key, value in MEETS_EVERY_GOAL.items() if key != name}
    assert not goals_met(absent, note_rnn, q)[name]  # a statistic not measured is a miss
