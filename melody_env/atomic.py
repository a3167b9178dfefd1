"""Crash-safe file writing: write to a temporary file in the same folder, then rename over.

A reader (or a resumed run) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where Linux shows it (``os.umask`` can
    only read it by setting it, which races with other threads creating files)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def check_regular_target(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if writing a file there replaces at most a regular file.

    Raises:
        ValueError: it is a folder, FIFO, device or socket (a write would replace or block on it).
    """
    target = Path(path)
    try:
        mode = os.stat(target).st_mode  # follows a symlink: what the user means
    except FileNotFoundError:
        return target
    except OSError as error:
        raise ValueError(f"cannot write {target}: {error.strerror}") from error
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise ValueError(f"cannot write {target}: it is {kind}; melody-rl writes regular files")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success, rename it over ``path``.

    The result gets the permissions a plain ``open()`` would give it (``0666`` less the umask),
    whatever the writer did to the temporary file (``mkstemp`` makes it ``0600``, and some
    writers, e.g. safetensors, recreate it). Only a regular file (or nothing) is replaced.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hello")
    >>> target.read_text()
    'hello'

    Raises:
        ValueError: ``path`` is a folder, FIFO, device or socket.
    """
    target = check_regular_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        check_regular_target(target)  # made a FIFO or folder meanwhile: leave it alone
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


TEMPORARY_PATTERN = ".*.????????.tmp"
"""The name :func:`atomic_path` gives its temporary file: ``.<name>.<8 random characters>.tmp``."""


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete, in ``folder`` (not below it), the temporary files of writes that were killed
    inside :func:`atomic_path`; return them. Call it only where no other process is writing,
    e.g. when a killed run resumes in its folder."""
    removed = [path for path in Path(folder).glob(TEMPORARY_PATTERN) if path.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
