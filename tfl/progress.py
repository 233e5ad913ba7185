"""Progress of long work: a counter with rate and time left.

On a terminal (and in a Jupyter notebook) the counter is one line that updates in place; where
output goes to a file or a pipe it prints a plain line now and then (every tenth of the work, or
every `every_seconds`), so logs stay short. Workflows create one only when they have a `log`
(the CLI passes none with `--json`, so stdout keeps only the JSON).

>>> import io
>>> out = io.StringIO()
>>> with Progress(4, "fine-tuning", unit="steps", stream=out) as progress:
...     for _ in range(4):
...         progress.advance()
>>> print(out.getvalue().splitlines()[-1])  # doctest: +ELLIPSIS
fine-tuning 4/4 steps (100%) ... steps/s, done in ...
"""

import sys
import time


def _interactive(stream):
    if "ipykernel" in sys.modules and stream in (sys.stdout, sys.stderr):
        return True  # a notebook renders "\r" as an in-place update
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def format_seconds(seconds):
    """`0:07`, `3:05`, `1:02:03`.

    >>> format_seconds(7), format_seconds(185), format_seconds(3723)
    ('0:07', '3:05', '1:02:03')
    """
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Count `total` units of work labelled `label`; `advance(n)` after each piece.

    Args:
        total: units in all (steps, files, variants).
        label: what is being done, e.g. "pruning fine-tune".
        unit: the unit's name in the line.
        stream: where to write (default stdout).
        every_seconds: on a non-interactive stream, the longest quiet time between lines.
        quiet_seconds: on a non-interactive stream, no intermediate line before this much
            time has passed (work that ends sooner prints only its final line).
        extra: a function returning a short text appended to the line (e.g. the loss).
    """

    def __init__(self, total, label, unit="steps", stream=None, every_seconds=30.0, extra=None,
                 quiet_seconds=2.0):
        self.total, self.label, self.unit = max(int(total), 1), label, unit
        self.stream = stream or sys.stdout
        self.interactive = _interactive(self.stream)
        self.every_seconds, self.extra = every_seconds, extra
        self.quiet_seconds = quiet_seconds
        self.done = 0
        self.started = self._last_line = time.perf_counter()
        self._last_tenth = 0

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if error is None and self.done < self.total:
            self.done = self.total
        if error is None or self.interactive:
            self._write(final=True)

    def advance(self, count=1):
        self.done = min(self.done + count, self.total)
        now = time.perf_counter()
        tenth = 10 * self.done // self.total
        if self.interactive:
            if now - self._last_line >= 0.2 or self.done == self.total:
                self._write()
        elif (self.done < self.total and now - self.started >= self.quiet_seconds
              and (tenth > self._last_tenth or now - self._last_line >= self.every_seconds)):
            self._last_tenth = tenth
            self._write()  # (the last line is written by __exit__, with the time taken)

    def line(self, final=False):
        elapsed = time.perf_counter() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = (f"{self.label} {self.done}/{self.total} {self.unit} "
                f"({100 * self.done // self.total}%) {rate:,.1f} {self.unit}/s")
        if final:
            text += f", done in {format_seconds(elapsed)}"
        elif rate > 0:
            text += f", {format_seconds((self.total - self.done) / rate)} left"
        if self.extra:
            text += f"  {self.extra()}"
        return text

    def _write(self, final=False):
        self._last_line = time.perf_counter()
        if self.interactive:
            end = "\n" if final else ""
            self.stream.write("\r\033[K" + self.line(final) + end)
        else:
            self.stream.write(self.line(final) + "\n")
        self.stream.flush()
