"""``python -m camera`` is the ``bodycam`` command."""

import sys

from camera.cli import main

sys.exit(main())
