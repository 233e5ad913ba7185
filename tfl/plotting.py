"""Figures written to PNG files: one place for matplotlib's file-writing set-up.

Library code draws into the axes `figure()` yields and the figure is saved when the block ends.
The figure is a `matplotlib.figure.Figure` of its own, without pyplot: no window opens, it works
on a machine with no display, and matplotlib's backend is left alone, so a notebook that trains
a model (which saves loss.png) still shows its own plots inline. Notebooks draw with
matplotlib directly.

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
    as PNG when the block ends without an error."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    axes = fig.subplots(rows, 1)
    yield axes
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
