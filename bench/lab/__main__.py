"""`python -m bench.lab`: the lab report's experiments on this machine (bench.lab.run)."""

import sys

from bench.lab.run import main

sys.exit(main())
