"""``python -m editbench.cli ...``: the ``editbench`` command."""
import sys

from editbench.cli import main

sys.exit(main())
