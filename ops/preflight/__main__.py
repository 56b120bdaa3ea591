"""`python -m ops.preflight`: go / no-go before a sale (ops.preflight.run)."""

import sys

from ops.preflight.run import main

sys.exit(main())
