"""``python -m weixin_trio``: the ``weixin-trio`` command line."""

import sys

from ._cli import main

sys.exit(main())
