"""``python -m deconv`` is the ``deconv`` command."""

import sys

from deconv.cli import main

if __name__ == "__main__":
    sys.exit(main())
