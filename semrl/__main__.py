"""``python -m semrl``: the command line."""

import sys

from semrl.cli import main

sys.exit(main())
