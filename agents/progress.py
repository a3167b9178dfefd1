"""Progress bars of the ``melody-rl`` commands: tqdm on stderr, with an ETA.

Every command that shows progress takes ``--progress`` / ``--no-progress`` (on by default,
:func:`agents.commands.arguments.add_progress_argument`); with ``--no-progress`` no bar is
drawn and the command's log lines are plain.

>>> import io
>>> bar = tqdm(total=10, file=io.StringIO())
>>> advance = fraction_updater(bar, 10)
>>> advance(0.26), bar.n, advance(1.0), bar.n
(None, 3, None, 10)
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm import tqdm


def progress_bar(total: float, description: str, unit: str, enabled: bool = True) -> tqdm:
    """A tqdm bar over ``total`` ``unit`` s (elapsed time, rate and ETA), on stderr; a silent
    one that still counts with ``enabled=False``."""
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
        smoothing=0.05,
    )


def fraction_updater(bar: tqdm, units: int) -> Callable[[float], None]:
    """A callback ``fraction -> None`` that moves ``bar`` by ``units`` in all as the fraction goes
    from 0 to 1, in whole units and never back (for :func:`melody_env.evaluation.evaluate`'s
    ``progress``)."""
    shown = 0

    def update(fraction: float) -> None:
        nonlocal shown
        target = round(units * min(max(fraction, 0.0), 1.0))
        if target > shown:
            bar.update(target - shown)
            shown = target

    return update


def log_function(bar: tqdm | None) -> Callable[[str], None]:
    """``print`` while no bar is drawn, else a writer that keeps the bar below the lines."""
    if bar is None or bar.disable:
        return print
    return lambda message: bar.write(message, file=sys.stdout)
