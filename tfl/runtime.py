"""Importing TensorFlow without its start-up chatter.

TensorFlow's C++ core prints several lines (oneDNN notes, "could not find cuda drivers") before
its logging can be configured, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them. The CLI imports
TensorFlow through `import_tensorflow_quietly`, which sends file descriptor 2 to a temporary
file during the import and the first device query, and replays it if the import fails.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def captured_stderr():
    """Send file descriptor 2 (C++ logs included) to a temporary file while the block runs.

    Yields a function that returns what was captured so far. If the block raises, the capture
    is replayed on stderr, so a failure keeps its diagnostics.

    >>> with captured_stderr() as captured:
    ...     _ = os.write(2, b"converter chatter")
    >>> captured()
    'converter chatter'
    """
    sys.stderr.flush()
    saved_fd = os.dup(2)
    capture = tempfile.TemporaryFile()
    text = []  # filled when the block ends, so the reader still works after it

    def read():
        if text:
            return text[0]
        capture.seek(0)
        return capture.read().decode("utf-8", errors="replace")

    os.dup2(capture.fileno(), 2)
    try:
        yield read
    except BaseException:
        os.dup2(saved_fd, 2)
        sys.stderr.write(read())
        raise
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        text.append(read())
        capture.close()


def import_tensorflow_quietly():
    """Import TensorFlow (and enumerate devices) with C++ start-up logs suppressed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with captured_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # triggers the driver probe while quiet
    return tf
