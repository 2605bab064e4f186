"""`python -m rnnexp` is the `rnnexp` command."""

import sys

from rnnexp.framework.cli import main

sys.exit(main())
