"""`python -m tfl` is the same as the `tfl` command."""

import sys

from tfl.cli import main

sys.exit(main())
