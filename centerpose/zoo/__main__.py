"""``python -m centerpose.zoo list | download <name> | path <name>``."""

import sys

from centerpose.zoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
