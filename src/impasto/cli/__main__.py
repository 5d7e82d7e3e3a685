"""``python -m impasto.cli``."""

import sys

from . import main

sys.exit(main())
