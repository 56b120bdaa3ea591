"""After a sale (`python -m ops.report`): what it did, read from the live stack, beside the planner's forecast.

`read` reads the stack through the AWS APIs (the orders table, the DLQ, CloudWatch's metrics and alarm history, the
worker service's ECS events), `figures` sets each measured figure beside the forecast and writes the verdict (pure),
`render` writes the Markdown, the plots and the JSON, and `run` is the command.
"""
