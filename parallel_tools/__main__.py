"""`python -m parallel_tools` runs the `parallel-tools` command."""

import sys

from .cli import main

sys.exit(main())
