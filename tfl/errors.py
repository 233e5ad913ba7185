"""The one exception type for a user's mistake.

A `TflError` carries a one-line message that names the problem and the fix. The CLI prints it
as `tfl: error: ...` and exits with status 2; library users catch it like any exception.

>>> from tfl.errors import TflError
>>> raise TflError("no such file: corpus.txt; give the path to a UTF-8 text file")
Traceback (most recent call last):
...
tfl.errors.TflError: no such file: corpus.txt; give the path to a UTF-8 text file
"""


class TflError(Exception):
    """A mistake in the user's input: bad path, bad option, unusable data."""


class CorpusUnavailableError(TflError):
    """A named corpus could not be downloaded and has no local or cached copy."""


def did_you_mean(name, choices):
    """A sentence listing the valid `choices`, with the closest one first if there is one.

    >>> did_you_mean("tiny_shakespear", ["python_docs", "tiny_shakespeare"])
    "did you mean 'tiny_shakespeare'? Valid names: python_docs, tiny_shakespeare"
    """
    import difflib

    close = difflib.get_close_matches(name, choices, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}Valid names: {', '.join(sorted(choices))}"
