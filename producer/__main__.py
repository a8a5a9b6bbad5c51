"""``python -m producer``: see :mod:`producer.app`."""

import sys

from producer.app import main

sys.exit(main())
