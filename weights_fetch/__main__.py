"""``python -m weights_fetch COMMAND ...``: the ``weights`` commands without the ``tinct`` wrapper."""

import sys

from .cli import main

sys.exit(main())
