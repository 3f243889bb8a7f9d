"""``python -m cruxlog_vision``: same as the ``cruxlog-vision`` command."""

import sys

from cruxlog_vision.cli import main

sys.exit(main())
