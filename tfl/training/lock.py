"""One writer per run directory: the lock a `tfl train` holds on its `--out` while it runs.

The lock is a small file in the run directory, `.tfl-train.lock`, holding the process id and
host of its holder (for the error message) and locked with the operating system's file lock
(`flock`). The operating system drops that lock when the process ends in any way, a SIGKILL
included, so a lock file left behind by a killed run is recognised as stale and taken over by
the next run; a run that ends normally (or with an error, or Ctrl-C) removes the file. On a
filesystem without `flock`, the lock falls back to the recorded process: it is stale when that
process no longer runs on this host.

A second `tfl train` on the same `--out` stops at once with a one-line error naming the holder,
before it writes anything:

>>> import tempfile
>>> run_dir = Path(tempfile.mkdtemp()) / "run"
>>> with run_lock(run_dir):
...     with run_lock(run_dir):  # doctest: +ELLIPSIS
...         pass
Traceback (most recent call last):
...
tfl.errors.TflError: .../run is being trained by another `tfl train` (process ... on ...); ...
>>> sorted(p.name for p in run_dir.iterdir())  # released: nothing left behind
[]
"""

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path

from tfl.errors import TflError
from tfl.io import process_is_alive

LOCK_FILE = ".tfl-train.lock"


def _holder():
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def _read_holder(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        holder = json.loads(os.read(fd, 4096).decode("utf-8"))
    except (OSError, ValueError):
        return None  # empty (its writer is between creating and filling it) or damaged
    return holder if isinstance(holder, dict) else None


def _held_error(run_dir, holder):
    who = (f"process {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
           if holder else "process unknown")
    return TflError(f"{run_dir} is being trained by another `tfl train` ({who}); wait for it "
                    "to finish or stop it, or choose another --out")


def _try_flock(fd):
    """True when this process now holds the lock on `fd`, False when another process does, None
    when the filesystem has no `flock`."""
    try:
        import fcntl
    except ImportError:  # Windows: the recorded holder decides
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:
        if error.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return None
        raise
    return True


def _held_elsewhere(fd):
    """True when another live process holds the lock file open as `fd`; otherwise this process
    now holds its `flock` (if the filesystem has one)."""
    locked = _try_flock(fd)
    if locked is not None:
        return not locked
    # No flock here: the recorded holder decides. A live process on this host holds it; a
    # holder on another host cannot be checked, so it holds it too.
    holder = _read_holder(fd)
    pid = holder.get("pid") if holder else None
    return bool(holder) and (holder.get("host") != socket.gethostname()
                             or (isinstance(pid, int) and pid > 0 and process_is_alive(pid)))


def _acquire(run_dir):
    path = run_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # the directory was removed meanwhile (a failed new run)
            run_dir.mkdir(parents=True, exist_ok=True)
            continue
        except PermissionError:
            raise TflError(f"cannot open {path} (no permission), so another user may be "
                           "training there; choose another --out") from None
        if _held_elsewhere(fd):
            holder = _read_holder(fd)
            os.close(fd)
            raise _held_error(run_dir, holder)
        # The last holder removes the file when it ends: if it did so between our open and our
        # lock, we hold a lock on a removed file, and must lock the new one instead.
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(_holder()).encode("utf-8"))
            return fd
        os.close(fd)


def check_unlocked(run_dir):
    """Raise `TflError`, naming the holder, when a live process holds the lock of `run_dir`.
    Creates nothing: a run calls it first, so that a second writer stops before any work."""
    try:
        fd = os.open(Path(run_dir) / LOCK_FILE, os.O_RDWR)
    except OSError:
        return  # no lock file (or none this user may open: `run_lock` will say so)
    try:
        if _held_elsewhere(fd):
            raise _held_error(run_dir, _read_holder(fd))
    finally:
        os.close(fd)  # (which drops the flock just taken, if any)


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold the lock of `run_dir` (created if missing) while the block runs.

    Raises `TflError`, naming the holder, when another live process holds it. The lock is
    released, and its file removed, when the block ends in any way; a process killed while it
    holds the lock leaves a stale file, which the next `run_lock` takes over.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = _acquire(run_dir)
    try:
        yield
    finally:
        # Removed while still locked: a process waiting to lock this file finds it gone and
        # makes a new one (see `_acquire`), so two processes never both hold the lock.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(run_dir / LOCK_FILE)
        os.close(fd)


def is_lock_file(path):
    """True for the lock file of a run directory (which a stale lock can leave behind)."""
    return Path(path).name == LOCK_FILE
