"""ECR handlers: repositories and their lifecycle policies, and the image build (an awsx component; no Docker engine
here), stood in for by a tag naming the build context's content: the local ECS runs that context's ENTRYPOINT."""

from __future__ import annotations

import hashlib
from pathlib import Path

from bench.localaws.resources.registry import (
    CONTROL,
    Context,
    Created,
    Declared,
    Image,
    Invalid,
    Standin,
    handles,
    json_text,
)

IMAGE_TAG_PREFIX = "local-"  # the stand-in image's tag: this, then the build context's digest


def context_digest(context: Path) -> str:
    """What the build context holds, as a hash: the stand-in image's tag changes when the code does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@handles("awsx:ecr:Image", CONTROL)
def image(ctx: Context, r: Declared) -> Created:
    context, dockerfile = (
        Path(r.inputs["context"]),
        Path(r.inputs.get("dockerfile") or Path(r.inputs["context"]) / "Dockerfile"),
    )
    if not dockerfile.is_file():
        raise Invalid(f"no Dockerfile at {dockerfile}")
    uri = f"{r.inputs['repositoryUrl']}:{IMAGE_TAG_PREFIX}{context_digest(context)}"
    ctx.images.append(Image(uri, context, dockerfile))
    ctx.standins.append(
        Standin(
            r.urn,
            f"image not built (no Docker engine): the local ECS runs {context.name}/ "
            f"with its Dockerfile's ENTRYPOINT, as {uri.rsplit('/', 1)[-1]}",
        )
    )
    return uri, {"imageUri": uri}


@handles("aws:ecr/repository:Repository", CONTROL)
def repository(ctx: Context, r: Declared) -> Created:
    scanning = r.inputs.get("imageScanningConfiguration") or {}
    found = ctx.client("ecr").create_repository(
        repositoryName=r.name,
        imageScanningConfiguration={"scanOnPush": bool(scanning.get("scanOnPush", False))},
        imageTagMutability=r.inputs.get("imageTagMutability", "MUTABLE"),
    )["repository"]
    return r.name, {
        "arn": found["repositoryArn"],
        "repositoryUrl": found["repositoryUri"],
        "registryId": found["registryId"],
    }


@handles("aws:ecr/lifecyclePolicy:LifecyclePolicy", CONTROL)
def lifecycle_policy(ctx: Context, r: Declared) -> Created:
    json_text(r.inputs["policy"], "the lifecycle policy")
    found = ctx.client("ecr").put_lifecycle_policy(
        repositoryName=r.inputs["repository"], lifecyclePolicyText=r.inputs["policy"]
    )
    return r.inputs["repository"], {"registryId": found.get("registryId", "")}
