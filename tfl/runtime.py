"""Importing TensorFlow without its start-up chatter.

TensorFlow's C++ core prints several lines (oneDNN notes, "could not find cuda drivers") before
its logging can be configured, so `TF_CPP_MIN_LOG_LEVEL` cannot hide them. The CLI imports
TensorFlow through `import_tensorflow_quietly`, which sends file descriptor 2 to a temporary
file during the import and the first device query, and replays it if the import fails.
"""

import os
import sys
import tempfile


def import_tensorflow_quietly():
    """Import TensorFlow (and enumerate devices) with C++ start-up logs suppressed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # triggers the driver probe while quiet
        except BaseException:
            os.dup2(saved_fd, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", errors="replace"))
            raise
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
    return tf
