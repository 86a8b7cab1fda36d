"""``python -m qtasks``: the same command line as the ``qtasks`` script."""

from __future__ import annotations

import sys

from qtasks.cli import main

if __name__ == "__main__":
    sys.exit(main())
