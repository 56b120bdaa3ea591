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
        listener_ports = [HTTP_PORT, HTTPS_PORT] if args.https else [HTTP_PORT]
        for port in listener_ports:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-in-{port}",
                security_group_id=self.alb_sg.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=ANYWHERE,
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-alb-to-tasks",
            security_group_id=self.alb_sg.id,
            ip_protocol="tcp",
            from_port=contract.CONTAINER_PORT,
            to_port=contract.CONTAINER_PORT,
            referenced_security_group_id=self.tasks_sg.id,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-tasks-from-alb",
            security_group_id=self.tasks_sg.id,
            ip_protocol="tcp",
            from_port=contract.CONTAINER_PORT,
            to_port=contract.CONTAINER_PORT,
            referenced_security_group_id=self.alb_sg.id,
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-tasks-https-out",
            security_group_id=self.tasks_sg.id,
            ip_protocol="tcp",
            from_port=HTTPS_PORT,
            to_port=HTTPS_PORT,
            cidr_ipv4=ANYWHERE,
            opts=child,
        )
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "subnet_ids": self.subnet_ids,
                "alb_sg_id": self.alb_sg.id,
                "tasks_sg_id": self.tasks_sg.id,
            }
        )
