"""Figures written to PNG files: one place for matplotlib's file-writing set-up.

Library code draws into the axes `figure()` yields and the figure is saved and closed when the
block ends, with the non-interactive Agg backend (so no window opens, and plotting works on a
machine with no display). Notebooks draw with matplotlib directly.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "line.png"
>>> with figure(path) as ax:
...     _ = ax.plot([0, 1], [1, 0])
>>> path.stat().st_size > 0
True
"""

import contextlib


@contextlib.contextmanager
def figure(path, size=(6, 4), rows=1, dpi=100):
    """Yield the axes of a new figure (an array of them when `rows` > 1); save it to `path`
    as PNG and close it when the block ends without an error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, 1, figsize=size)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
