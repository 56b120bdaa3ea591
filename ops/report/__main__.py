"""`python -m ops.report`: the post-sale report (ops.report.run)."""

import sys

from ops.report.run import main

sys.exit(main())
