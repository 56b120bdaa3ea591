"""How the local deployer creates each resource type the program declares: the handlers in `registry`."""
