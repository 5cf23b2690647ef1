"""`python -m xmodal.cli ...`: the xmodal command."""

import sys

from xmodal.cli import main

sys.exit(main())
