"""Run folders shared safely, and runs stopped gracefully: a lock, a stop flag, folder checks.

- :class:`RunLock`: one writer per run folder. A second ``train`` (``baseline``, ``benchmark``)
  into a folder in use is refused with a one-line error naming the holder's pid. The lock is an
  ``flock`` on ``RUN/.melody-rl.lock``, which the kernel drops when its holder dies however it
  dies, so a stale lock (a killed run's) is simply taken over; the file itself stays.
- :class:`GracefulStop`: while active, the first SIGINT (Ctrl-C) or SIGTERM only sets a flag;
  the loop polls :attr:`GracefulStop.signal` between updates, writes its checkpoint and raises
  :class:`Stopped`, which ``melody-rl`` turns into exit status 130 (SIGINT) or 143 (SIGTERM)
  after a line saying how to resume. A second signal stops at once (``KeyboardInterrupt``).
- :func:`check_output_folder`: an ``--out`` that can be a run folder (not empty, not a file,
  writable, a name the file system accepts), checked before any work.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with RunLock(folder, "train"):
...     RunLock(folder, "train").acquire()
Traceback (most recent call last):
...
agents.run_control.RunLocked: ... is in use by another melody-rl train (pid ...); wait for it ...
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

LOCK_NAME = ".melody-rl.lock"
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""Exit status of a run stopped by each signal (128 + the signal's number, as shells report)."""


class RunLocked(RuntimeError):
    """The run folder is in use by another live process."""


class Stopped(Exception):
    """A run stopped by a signal after saving what it had.

    Attributes:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        message: what was saved and how to resume, one line.
    """

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum
        self.message = message

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS.get(self.signum, 128 + int(self.signum))


class RunLock:
    """An exclusive lock on a run folder (created if missing) for the life of a run.

    Use as a context manager, or :meth:`acquire` / :meth:`release`.

    Args:
        run_dir: the run folder.
        command: what holds it (shown to a refused second run), e.g. ``"train"``.
    """

    def __init__(self, run_dir: str | os.PathLike, command: str = "run") -> None:
        self.run_dir = Path(run_dir)
        self.command = command
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.run_dir / LOCK_NAME

    def acquire(self) -> RunLock:
        """Take the lock.

        Raises:
            RunLocked: a live process holds it (the message names its pid and command).
            OSError: the folder cannot be created or written.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(fd)
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise RunLocked(
                f"{self.run_dir} is in use by another melody-rl {holder.get('command', 'run')} "
                f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}); wait for it to "
                "finish or choose another --out"
            ) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would let two runs lock two files)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)  # closing releases the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class GracefulStop:
    """Turn the first SIGINT/SIGTERM into a flag while active; a second one stops at once.

    ``on_signal(signum)``, if given, runs on the first signal (e.g. to pass it on to workers).

    Handlers are installed only in the main thread (elsewhere this does nothing) and the
    previous ones are restored on exit.

    >>> with GracefulStop() as stop:
    ...     stop.signal is None
    True
    """

    def __init__(self, on_signal: Callable[[int], None] | None = None) -> None:
        self.signal: int | None = None
        self._previous: dict[int, object] = {}
        self._on_signal = on_signal

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:  # the second signal: give up on a graceful stop
            self._restore()
            raise KeyboardInterrupt
        self.signal = signum
        name = signal.Signals(signum).name
        print(
            f"\n{name} received: stopping after the current update (send it again to stop now)",
            flush=True,
        )
        if self._on_signal is not None:
            self._on_signal(signum)

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in EXIT_STATUS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __exit__(self, *exc) -> None:
        self._restore()


def check_output_folder(out: str | os.PathLike | None, flag: str = "--out") -> Path:
    """``out`` as a path that can hold a run: non-empty, not an existing non-folder, under a
    writable existing ancestor, and with names the file system accepts.

    Raises:
        ValueError: naming the flag, the path and the problem.
    """
    if out is None or str(out).strip() == "":
        raise ValueError(f"{flag} must name a folder, got an empty path")
    path = Path(out)
    limit = os.pathconf("/", "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    for part in path.parts:
        if len(os.fsencode(part)) > limit:
            raise ValueError(f"{flag}: the name {part[:20]}... is longer than {limit} bytes")
    if path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path} exists and is not a folder")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{flag} {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: {ancestor} is not writable")
    return path
