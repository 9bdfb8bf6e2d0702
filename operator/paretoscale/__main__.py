"""`python -m paretoscale ...`: the same command as `paretoscale ...`."""

import sys

from paretoscale.cli import main

if __name__ == "__main__":
    sys.exit(main())
