"""Small file helpers that never leave a half-written file or directory behind."""

import contextlib
import json
import stat
import os
import shutil
import tempfile
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_DEFAULT_FILE_MODE = 0o666 & ~_umask()


def write_text_atomic(path, text):
    """Write `text` to `path` through a temporary file in the same directory, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, _DEFAULT_FILE_MODE)  # mkstemp makes 0600 files; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json_atomic(path, obj):
    write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def process_is_alive(pid):
    """True when a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_stale_temporaries(path):
    """Remove temporary siblings of `path` left by an `atomic_directory` whose process was
    killed (their names carry the writer's process id)."""
    path = Path(path)
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        pid = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not process_is_alive(int(pid)) and candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(path):
    """Yield a temporary directory that replaces `path` only if the block succeeds.

    The temporary directory is a hidden sibling named after `path` and this process; one left
    behind by a killed process is removed the next time `path` is written.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "result"
    >>> with atomic_directory(target) as tmp:
    ...     _ = (tmp / "a.txt").write_text("hello")
    >>> sorted(p.name for p in target.parent.iterdir()), (target / "a.txt").read_text()
    (['result'], 'hello')
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                suffix=".tmp"))
    os.chmod(tmp, _DEFAULT_FILE_MODE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
