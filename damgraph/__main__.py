"""``python -m damgraph``: the same as the ``damgraph`` command."""
import sys

from damgraph.cli import main

sys.exit(main())
