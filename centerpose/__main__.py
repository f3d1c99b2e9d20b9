"""``python -m centerpose <verb> ...``: the ``centerpose`` command (:mod:`centerpose.cli`)."""

import sys

from centerpose.cli import main

if __name__ == "__main__":
    sys.exit(main())
