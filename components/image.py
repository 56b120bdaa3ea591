"""Service image: one ECR repository and one image built from `app/`, shared by the sync, receiver and worker roles.

The role is chosen at run time by the ROLE environment variable, so one build serves all three services. Tags are
immutable: a tag always names the image that was scanned and deployed (awsx tags each build with a fresh random tag,
and the services run the image by digest).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from app import contract

KEPT_IMAGES = 10


@dataclass(frozen=True)
class ServiceImageArgs:
    context: Path  # the build context: app/, with app/Dockerfile


class ServiceImage(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:image:ServiceImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            image_scanning_configuration={"scan_on_push": True},
            image_tag_mutability="IMMUTABLE",
            force_delete=True,  # `pulumi destroy` removes the pushed images with the repository
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-keep-recent",
            repository=self.repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"keep the last {KEPT_IMAGES} images",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEPT_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        image = awsx.ecr.Image(
            f"{name}-image",
            repository_url=self.repository.repository_url,
            context=str(args.context),
            dockerfile=str(args.context / "Dockerfile"),
            platform=contract.IMAGE_PLATFORM,
            opts=child,
        )
        self.image_uri: pulumi.Output[str] = image.image_uri
        self.register_outputs({"repository_url": self.repository.repository_url, "image_uri": self.image_uri})
