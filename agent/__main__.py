"""``python -m agent`` is ``robustwatch``."""

import sys

from agent.cli import main

sys.exit(main())
