"""`python -m bot` runs the `tocsin` command."""

import sys

from bot.cli import main

sys.exit(main())
