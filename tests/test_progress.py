"""One progress convention: ``--progress`` / ``--no-progress`` (default on) on every command that
shows progress; the bar (tqdm, with an ETA) goes to stderr, and ``--no-progress`` really turns it
off."""

from __future__ import annotations

import argparse
import io
import re

import pytest
from tqdm import tqdm

from agents.cli import build_parser, main
from agents.commands.arguments import PROGRESS_HELP
from agents.progress import fraction_updater

BAR = re.compile(r"\d+%\|.*\| *\d+/\d+ \[\d\d:\d\d<\d\d:\d\d")
"""A tqdm line with a percentage, a count and ``[elapsed<remaining`` (the ETA)."""


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize(
    "command", ["evaluate", "baseline", "benchmark", "frontier", "pretrain", "train"]
)
def test_every_command_with_progress_has_the_same_flag(command):
    parser = subcommand_parsers()[command]
    (action,) = [a for a in parser._actions if "--progress" in a.option_strings]
    assert isinstance(action, argparse.BooleanOptionalAction)
    assert action.option_strings == ["--progress", "--no-progress"]
    assert action.default is True and action.help == PROGRESS_HELP


def test_fraction_updater_moves_in_whole_units():
    bar = tqdm(total=20, file=io.StringIO())
    bar.update(5)
    advance = fraction_updater(bar, 10)
    for fraction, expected in ((0.04, 5), (0.06, 6), (0.5, 10), (0.4, 10), (1.0, 15), (2.0, 15)):
        advance(fraction)
        assert bar.n == expected, fraction


def run_with_and_without_bar(argv, tmp_path, capsys):
    """``argv`` run twice (into ``a`` and, with ``--no-progress``, ``b``): both captures."""
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    shown = capsys.readouterr()
    assert main([*argv, "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    quiet = capsys.readouterr()
    assert BAR.search(shown.err) and not BAR.search(quiet.err) and "%|" not in quiet.err
    return shown, quiet


def test_evaluate_shows_a_bar_with_an_eta_unless_no_progress(tiny_rnn_path, tmp_path, capsys):
    argv = ["evaluate", "--reward-rnn", tiny_rnn_path, "--n", "6", "--samples", "0"]
    argv += ["--bootstrap", "0", "--baseline", "random"]
    shown, quiet = run_with_and_without_bar(argv, tmp_path, capsys)
    assert "evaluate: 100%" in shown.err and "12/12" in shown.err
    assert "note_rnn: 6 compositions" in shown.out and "Notes not in key" in shown.out
    assert "note_rnn: 6 compositions" in quiet.out


def test_baseline_bar_follows_the_flag(tiny_rnn_path, tmp_path, capsys):
    pytest.importorskip("stable_baselines3")
    argv = ["baseline", "--algo", "sb3-a2c", "--steps", "64", "--num-envs", "8"]
    argv += ["--reward-rnn", tiny_rnn_path, "--eval-n", "4"]
    shown, _ = run_with_and_without_bar(argv, tmp_path, capsys)
    assert "sb3-a2c seed 0: 100%" in shown.err and "64/64" in shown.err  # training
    assert "evaluate: 100%" in shown.err and "12/12" in shown.err  # Note RNN, sampled, greedy


def test_benchmark_bar_follows_the_flag(tiny_rnn_path, tmp_path, capsys):
    argv = ["benchmark", "--algos", "q", "--seeds", "0", "--steps", "64", "--num-envs", "8"]
    argv += ["--eval-n", "4", "--jobs", "1", "--reward-rnn", tiny_rnn_path]
    shown, quiet = run_with_and_without_bar(argv, tmp_path, capsys)
    assert "benchmark: 100%" in shown.err and "1/1" in shown.err
    assert "q_seed0 done" in shown.out and "| Statistic" in shown.out
    assert "q_seed0 done in" in quiet.out
