"""Files written atomically, and one report run per output folder at a time.

Every file is written to a temporary file in the same folder, then :func:`os.replace`: an
interrupted report run (also one killed with SIGKILL) never leaves a half-written page, record,
notebook or index behind; a reader sees the previous version of a file or the new one, never a
mixture. :func:`output_lock` keeps two runs on one folder from interleaving their files: the
second refuses at once and says which run holds the folder.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import sys
import tempfile
from pathlib import Path

from .parameters import ParameterError

__all__ = ["atomic_open", "write_atomic", "publishable", "ensure_writable_folder", "output_lock",
           "remove_stale_temporaries", "LOCK_NAME", "FolderInUse"]

#: The lock file of an output folder while a report run writes there.
LOCK_NAME = ".reliability-report.lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publishable(path: str | os.PathLike) -> None:
    """Give a file the permissions a normally created one gets (``mkstemp`` makes them private).

    Reports are meant to be read by others, so a temporary file that becomes a report gets
    ``0666`` less the umask, as :func:`open` would give it.
    """
    os.chmod(path, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    If the ``with`` body raises (including ``KeyboardInterrupt``), the temporary file
    is removed and ``path`` keeps its previous content (or stays absent).

    Parameters
    ----------
    path : path-like
        Final file name; its folder must exist.
    mode : {"w", "wb"}
    encoding : str, optional
        Text encoding (ignored in binary mode).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "report.json"
    >>> with atomic_open(target) as f:
    ...     _ = f.write("{}")
    >>> target.read_text()
    '{}'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        publishable(tmp_name)
        with open(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> write_atomic(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hello").read_text()
    'hello'
    """
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return Path(path)


def ensure_writable_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` and make sure files can be written there, before any notebook runs.

    Raises
    ------
    ParameterError
        Naming the folder and the reason (a file in the way, no permission).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ensure_writable_folder(pathlib.Path(tempfile.mkdtemp()) / "reports").is_dir()
    True
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ParameterError(f"output folder {str(folder)!r} cannot be written: {reason}") from None
    return folder


class FolderInUse(ParameterError):
    """Another report run holds the output folder (a usage error: exit status 2)."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        text = ""
    return text or "a run that has not written its name yet"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path`` (the file on disk now), or None if another run holds it."""
    for _ in range(100):  # a holder may remove the file between our open and our lock: retry on the new one
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise FolderInUse(f"output folder {str(path.parent)!r}: its lock file {path.name} keeps being replaced")


@contextlib.contextmanager
def output_lock(folder: str | os.PathLike):
    """Hold ``folder`` for one report run: an exclusive ``flock`` on :data:`LOCK_NAME` there.

    A second run on the same folder raises :class:`FolderInUse` at once, naming the process
    that holds it, rather than interleaving its files with the first run's. The kernel drops
    the lock when its holder exits, however it exits (a run killed with SIGKILL leaves the lock
    file behind, but not the lock: the next run takes it). The file is removed on release.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with output_lock(folder):
    ...     with output_lock(folder):
    ...         pass
    Traceback (most recent call last):
    ...
    reliability.reports.files.FolderInUse: output folder ... is in use by another report run (pid ...); ...
    >>> sorted(folder.iterdir())
    []
    """
    folder = Path(folder)
    path = folder / LOCK_NAME
    fd = _try_lock(path)
    if fd is None:
        raise FolderInUse(
            f"output folder {str(folder)!r} is in use by another report run ({_holder(path)}); "
            "wait for it to finish or write to another --output folder"
        )
    try:
        started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {started}: {' '.join(sys.argv)[:300]}\n".encode())
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still locked: a waiting opener then sees another inode and retries
        os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files a killed run left in ``folder`` (call only while holding its lock).

    Temporary files are the hidden ``.NAME.*.tmp`` (and ``.tmp.ipynb``) files of
    :func:`atomic_open` and of a running notebook; no other run writes there while the lock is held.
    """
    removed = []
    for path in Path(folder).glob(".*.tmp*"):
        if path.is_file() and (path.name.endswith(".tmp") or path.name.endswith(".tmp.ipynb")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed
