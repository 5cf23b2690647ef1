"""The `xmodal` command's entry point (pyproject: xmodal = "cli:main"); everything is in xmodal.cli.

    python -m cli fit series --dataset GunPoint
"""

import sys

from xmodal.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
