"""The flashsale Pulumi program: `pulumi up -s normal` or `pulumi up -s flashsale`."""

import pulumi

from components.deployment import build

for output_name, value in build().outputs.items():
    pulumi.export(output_name, value)
