"""Go / no-go before a sale (`python -m ops.preflight`): the command and its checks in `ops.preflight.run`."""
