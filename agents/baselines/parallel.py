"""The runs of a sweep (the benchmark's, the frontier's), in fresh processes, ``jobs`` at a time.

Each item (a :class:`~agents.baselines.runs.RunSpec` or a frontier
:class:`~agents.baselines.frontier.Point`: a dataclass with a ``name``) is given to a ``work``
function, ``work(item, out) -> record``, in its own spawned process, so that memory is given back
after each run; with ``jobs == 1`` in the calling process. A run that raises becomes a record
with the traceback (the other runs go on); a run stopped by a signal, a record with the signal.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from typing import Any

from agents.run_control import GracefulStop, Stopped

Work = Callable[[Any, str], dict[str, Any]]
"""``work(item, out)``: run one item into the folder ``out``; return its record."""


def run_logged(work: Work, label: str, item: Any, out: str, quiet: bool = False) -> dict:
    """``work(item, out)``; an exception becomes ``{label: asdict(item), "error": traceback}``
    and a :class:`~agents.run_control.Stopped` ``{label: ..., "stopped": signum, "message":
    ...}``. Prints ``"  NAME done in S s"`` unless ``quiet`` (a progress bar reports instead)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    started = time.perf_counter()
    try:
        return work(item, out)
    except Stopped as stopped:  # a signal: the run saved what it could; the sweep stops
        return {label: asdict(item), "stopped": stopped.signum, "message": stopped.message}
    except Exception:  # reported in the results, the other runs go on
        return {label: asdict(item), "error": traceback.format_exc()}
    finally:
        if not quiet:
            print(f"  {item.name} done in {time.perf_counter() - started:.0f} s", flush=True)


def execute(
    work: Work,
    label: str,
    items: Iterable[Any],
    out: str,
    jobs: int,
    stop: GracefulStop | None = None,
    quiet: bool = False,
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Yield ``(item, record)`` as runs finish (see the module docstring). After a signal
    (``stop``, or a run that stopped) no further run starts."""

    def stopping(record: dict[str, Any]) -> bool:
        return (stop is not None and stop.requested) or "stopped" in record

    if jobs == 1:
        for item in items:
            record = run_logged(work, label, item, out, quiet)
            yield item, record
            if stopping(record):
                return
        return
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(jobs, mp_context=context, max_tasks_per_child=1) as pool:
        pending = {pool.submit(run_logged, work, label, item, out, quiet): item for item in items}
        for future in futures.as_completed(pending):
            record = future.result()
            yield pending[future], record
            if stopping(record):
                pool.shutdown(wait=True, cancel_futures=True)
                return
