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


def _stale_temporaries(path):
    """Temporary siblings of `path` left by an `atomic_directory` whose process was killed
    (their names carry the writer's process id)."""
    for candidate in path.parent.glob(f".{path.name}.*.tmp"):
        pid = candidate.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not process_is_alive(int(pid)) and candidate.is_dir():
            yield candidate


def recover_directory(path):
    """Put back the previous `path` if a writer was killed after moving it aside and before
    renaming the new one into place. Call before reading a directory written atomically."""
    path = Path(path)
    if not path.exists():
        for candidate in _stale_temporaries(path):
            if (candidate / path.name).is_dir():
                os.replace(candidate / path.name, path)
                break
    return path


def remove_stale_temporaries(path):
    """Recover `path` if needed (`recover_directory`), then remove temporaries that killed
    writers left beside it."""
    path = recover_directory(path)
    for candidate in list(_stale_temporaries(path)):
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
    # Move the old directory aside before the new one takes its name, so that a kill at any
    # moment leaves either the old or the new directory in place (and a stale temporary that
    # the next write removes), never neither.
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                    suffix=".tmp"))
        os.replace(path, old / path.name)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_writable_path(out, replaces=False):
    """Raise `TflError` when `--out` cannot be written: it is a file, it lies under a file, or
    this user may not write where it goes. With `replaces`, `out` is renamed into its parent
    and emptied, so both must be writable. Nothing is created.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     check_writable_path(f.name)
    Traceback (most recent call last):
    ...
    tfl.errors.TflError: --out ... is a file, not a directory; choose another --out
    """
    from tfl.errors import TflError

    out = Path(out).expanduser()
    # (os.path's tests, unlike Path's, answer False for a folder this user may not look into.)
    if os.path.exists(out) and not os.path.isdir(out):
        raise TflError(f"--out {out} is a file, not a directory; choose another --out")
    parent = next(p for p in out.absolute().parents if os.path.exists(p))
    if not os.path.isdir(parent):
        raise TflError(f"--out {out} is inside {parent}, which is a file; choose another --out")
    exists = os.path.exists(out)
    folders = ([parent] if replaces or not exists else []) + ([out] if exists else [])
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise TflError(f"--out {out}: no permission to write in {folder}; choose another "
                           "--out")


OUTPUT_MARKER = ".tfl-output.json"  # names the command that wrote a replaceable output folder


def check_replaceable_output(out, command, inputs=()):
    """Refuse, with a one-line `TflError`, an `--out` folder that `command` must not replace.

    A command that writes a whole folder (`tfl export`, `tfl optimize`) replaces it when it
    already exists. That is safe only for a previous output of the same command, so `out` is
    refused when it is a file, a run directory (it holds config.json and weights), one of the
    `inputs` or a folder that contains one, the current directory, the home directory or `/`,
    or a non-empty folder without this command's marker file. `mark_output` writes the marker.

    >>> import tempfile
    >>> check_replaceable_output(tempfile.mkdtemp() + "/new", "export")  # a new folder: fine
    >>> check_replaceable_output(Path.home(), "export")
    Traceback (most recent call last):
    ...
    tfl.errors.TflError: --out ... is your home directory; export writes a whole folder ...
    """
    from tfl.errors import TflError

    out = Path(out).expanduser()
    resolved = out.resolve()
    hint = f"{command} writes a whole folder and replaces it; choose a new or empty --out"
    if out.exists() and not out.is_dir():
        raise TflError(f"--out {out} is a file; {hint}")
    for name, place in (("the current directory", Path.cwd()), ("your home directory",
                                                                 Path.home())):
        if resolved == place.resolve():
            raise TflError(f"--out {out} is {name}; {hint}")
    if resolved == Path(resolved.anchor):
        raise TflError(f"--out {out} is the root of the filesystem; {hint}")
    for source in inputs:
        source = Path(source).resolve()
        if resolved == source or resolved in source.parents:
            raise TflError(f"--out {out} holds the run it reads ({source}); {hint}")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if (out / "config.json").is_file() and not (out / OUTPUT_MARKER).is_file():
        raise TflError(f"--out {out} holds a training run; {hint}")
    marker = out / OUTPUT_MARKER
    try:
        written_by = json.loads(marker.read_text(encoding="utf-8")).get("command")
    except (OSError, ValueError):
        written_by = None
    if written_by != command:
        what = f"the output of `tfl {written_by}`" if written_by else "files tfl did not write"
        raise TflError(f"--out {out} holds {what}; {hint}")


def mark_output(directory, command):
    """Mark `directory` (about to replace an `--out` folder) as the output of `command`."""
    write_json_atomic(Path(directory) / OUTPUT_MARKER, {"command": command})
