"""The AWS regions a stack may spread its async system over (`regions`), and their short names.

Pure (no Pulumi, no AWS). The list is the commercial regions every account has enabled by default: an opt-in region
(af-south-1, ap-east-1, eu-south-1, me-south-1...) must first be enabled for the account, and a stack that named one
would fail half-way through `pulumi up`. Each of these has what one regional copy needs: ECS on Fargate, ALB, SNS,
SQS, DynamoDB global table replicas and Route 53 latency records.

The short name (`us-east-2` -> `use2`) goes in front of a regional copy's logical names, so an autonamed ALB or target
group (`use2-receiver-web-alb` plus Pulumi's 8 characters) stays within AWS's 32.
"""

from __future__ import annotations

from typing import Final

KNOWN_REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
)
MAX_REGIONS: Final = 5  # each region adds a copy of the async system and N-1 replication alarms
_DIRECTIONS: Final = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "central": "c",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
}


def short_name(region: str) -> str:
    """`us-east-2` -> `use2`, `ap-southeast-1` -> `apse1` (at most 5 characters for the known regions)."""
    area, direction, number = region.split("-")
    return f"{area}{_DIRECTIONS[direction]}{number}"
