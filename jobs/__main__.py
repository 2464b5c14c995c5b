"""``python -m jobs`` is ``python -m jobs.worker``."""

import sys

from jobs.worker import main

sys.exit(main())
