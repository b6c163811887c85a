"""`python -m jaxdl` is the `jaxdl` command."""

import sys

from jaxdl.cli import main

if __name__ == "__main__":
    sys.exit(main())
