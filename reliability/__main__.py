"""``python -m reliability``: the command line lives in :mod:`reliability.reports.cli`."""

import sys

from reliability.reports.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
