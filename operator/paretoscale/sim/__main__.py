"""`python -m paretoscale.sim ...`: the simulator CLI until `paretoscale sim` is wired."""

import sys

from paretoscale.sim.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
