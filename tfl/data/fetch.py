"""Finding a published data file: a local data directory first, else a checked download.

Every named data set of tfl is a set of files with published sha256 hashes. `verified_file`
looks for a file in the local data directories (`data_dir=`, then the `os.pathsep`-separated
`TFL_DATA_DIR` environment variable), directly or in a sub-folder named after the data set, and
checks its hash; without a local copy it downloads the file once with `keras.utils.get_file`
(hash checked, cached under the Keras cache folder or `TFL_CACHE_DIR`). With neither, it raises
`CorpusUnavailableError`, whose message says how to provide the file.

>>> import hashlib, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "hello.txt"), "w") as f:
...     _ = f.write("hello")
>>> digest = hashlib.sha256(b"hello").hexdigest()
>>> verified_file("hello.txt", "https://example.invalid/hello.txt", digest,
...               data_dir=folder).name
'hello.txt'
"""

import contextlib
import hashlib
import os
import sys
from pathlib import Path

from tfl.errors import CorpusUnavailableError, TflError


def data_dirs(data_dir=None):
    """Directories searched for local copies of named data sets, in order."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    for entry in os.environ.get("TFL_DATA_DIR", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    return dirs


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def local_copy(filenames, sha256, subdir=None, data_dir=None):
    """The first local copy of the file (under any of `filenames`) in the data directories, or
    None. A file of that name with another hash is an error: it is not the published file."""
    for directory in data_dirs(data_dir):
        for folder in ([directory / subdir] if subdir else []) + [directory]:
            for filename in filenames:
                candidate = folder / filename
                if candidate.is_file():
                    digest = sha256_of(candidate)
                    if digest != sha256:
                        raise TflError(
                            f"{candidate} has sha256 {digest[:12]}..., not the published "
                            f"{sha256[:12]}...; replace or remove that file")
                    return candidate
    return None


def verified_file(filename, url, sha256, subdir=None, data_dir=None, dataset=None,
                  other_names=()):
    """A local path to the published file `filename` with this `sha256`: a local copy, else a
    download from `url` (cached). `subdir` is the data set's folder in a data directory and in
    the cache; `dataset` names the data set in messages."""
    found = local_copy((filename, *other_names), sha256, subdir, data_dir)
    if found:
        return found
    from keras.utils import get_file  # imports TensorFlow: only when a download may be needed

    try:
        # Keras prints its download messages on stdout, which `--json` keeps for the result.
        with contextlib.redirect_stdout(sys.stderr):
            return Path(get_file(fname=filename, origin=url, file_hash=sha256,
                                 cache_subdir=f"tfl/{subdir}" if subdir else "tfl",
                                 cache_dir=os.environ.get("TFL_CACHE_DIR") or None))
    except Exception as e:  # urllib raises many types; all mean "not available here"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        name = dataset or subdir or filename
        where = f"its folder {subdir}/" if subdir else filename
        raise CorpusUnavailableError(
            f"could not download {name} ({reason[:120]}) and there is no local or cached copy; "
            f"without network, put {where} in a directory and set TFL_DATA_DIR to that "
            "directory (or pass --data-dir)") from None
