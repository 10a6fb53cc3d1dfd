"""``python -m benchmarks [--quick] [--report] [--output PATH]``."""

import sys

from benchmarks.run import main

sys.exit(main())
