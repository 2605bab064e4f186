"""`python -m rnnexp` is the `rnnexp` command."""

import sys

from rnnexp.cli import main

sys.exit(main())
