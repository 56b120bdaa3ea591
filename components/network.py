"""Network: the default VPC (the report ran there) and the two security groups of the services.

Creates: the default-VPC lookup (awsx), an ALB security group open to the internet on 80 (and 443 with HTTPS), and a
tasks security group that admits only the ALB's traffic on the container port. Tasks may reach AWS APIs and ECR
over HTTPS and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_awsx as awsx

from app import contract

ANYWHERE = "0.0.0.0/0"
HTTP_PORT = 80
HTTPS_PORT = 443
Rule = aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule


@dataclass(frozen=True)
class NetworkArgs:
    https: bool  # open 443 on the ALB (a certificate is configured)


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc = awsx.ec2.DefaultVpc(f"{name}-vpc", opts=child)
        self.vpc_id: pulumi.Output[str] = vpc.vpc_id
        # Public subnets with public task IPs: the default VPC has no NAT, and tasks must reach ECR and AWS APIs.
        self.subnet_ids: pulumi.Output[list[str]] = vpc.public_subnet_ids.apply(list)

        self.alb_sg = aws.ec2.SecurityGroup(
            f"{name}-alb", vpc_id=self.vpc_id, description="Load balancers: HTTP(S) from the internet", opts=child
        )
        self.tasks_sg = aws.ec2.SecurityGroup(
            f"{name}-tasks", vpc_id=self.vpc_id, description="Service tasks: only the load balancers", opts=child
        )

        def rule(
            suffix: str,
            kind: type[Rule],
            group: aws.ec2.SecurityGroup,
            port: int,
            peer: str | aws.ec2.SecurityGroup,
            why: str,
        ) -> None:
            """One TCP port to or from an address range (str) or another security group; `why` is the rule's
            description, what a reviewer of the group reads in the console."""
            kind(
                f"{name}-{suffix}",
                security_group_id=group.id,
                description=why,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=peer if isinstance(peer, str) else None,
                referenced_security_group_id=None if isinstance(peer, str) else peer.id,
                opts=child,
            )

        for port in [HTTP_PORT, HTTPS_PORT] if args.https else [HTTP_PORT]:
            rule(
                f"alb-in-{port}",
                aws.vpc.SecurityGroupIngressRule,
                self.alb_sg,
                port,
                ANYWHERE,
                f"orders from the internet on {port}",
            )
        rule(
            "alb-to-tasks",
            aws.vpc.SecurityGroupEgressRule,
            self.alb_sg,
            contract.CONTAINER_PORT,
            self.tasks_sg,
            "forward requests to the service tasks",
        )
        rule(
            "tasks-from-alb",
            aws.vpc.SecurityGroupIngressRule,
            self.tasks_sg,
            contract.CONTAINER_PORT,
            self.alb_sg,
            "requests from the load balancers only",
        )
        rule(
            "tasks-https-out",
            aws.vpc.SecurityGroupEgressRule,
            self.tasks_sg,
            HTTPS_PORT,
            ANYWHERE,
            "AWS APIs and ECR over HTTPS",
        )
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "subnet_ids": self.subnet_ids,
                "alb_sg_id": self.alb_sg.id,
                "tasks_sg_id": self.tasks_sg.id,
            }
        )
