"""EC2 handlers: the default-VPC lookup (an awsx component that exists only on AWS, stood in for by the emulator's
default VPC), security groups and their ingress and egress rules."""

from __future__ import annotations

import re
from typing import Any

from bench.localaws.resources.registry import CONTROL, Context, Created, Declared, Invalid, Standin, handles, whole


@handles("awsx:ec2:DefaultVpc", CONTROL)
def default_vpc(ctx: Context, r: Declared) -> Created:
    ec2 = ctx.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise Invalid("the account has no default VPC")
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    public = sorted(s["SubnetId"] for s in subnets if s.get("MapPublicIpOnLaunch"))
    ctx.standins.append(Standin(r.urn, f"default VPC lookup answered with the emulator's default VPC {vpc}"))
    return vpc, {"vpcId": vpc, "publicSubnetIds": public, "privateSubnetIds": []}


@handles("aws:ec2/securityGroup:SecurityGroup", CONTROL)
def security_group(ctx: Context, r: Declared) -> Created:
    ec2 = ctx.client("ec2")
    group = ec2.create_security_group(
        GroupName=r.name, Description=r.inputs.get("description", "Managed by Pulumi"), VpcId=r.inputs["vpcId"]
    )["GroupId"]
    # As Terraform's provider does: without inline egress rules, the default allow-all egress rule is removed.
    ec2.revoke_security_group_egress(
        GroupId=group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    owner = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["OwnerId"]
    return group, {"arn": f"arn:aws:ec2:{ctx.region}:{owner}:security-group/{group}", "ownerId": owner}


RULE_DESCRIPTION = re.compile(r"[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}")  # EC2's rule description


def _rule_description(text: str) -> str:
    if not RULE_DESCRIPTION.fullmatch(text):
        raise Invalid(f"description must be at most 255 of a-zA-Z0-9. _-:/()#,@[]+=&;{{}}!$*, got {text!r}")
    return text


def _rule(ctx: Context, r: Declared, egress: bool) -> Created:
    ec2 = ctx.client("ec2")
    permission: dict[str, Any] = {
        "IpProtocol": r.inputs["ipProtocol"],
        "FromPort": whole(r.inputs["fromPort"]),
        "ToPort": whole(r.inputs["toPort"]),
    }
    described = {"Description": _rule_description(r.inputs["description"])} if r.inputs.get("description") else {}
    if r.inputs.get("cidrIpv4"):
        permission["IpRanges"] = [{"CidrIp": r.inputs["cidrIpv4"], **described}]
    elif r.inputs.get("referencedSecurityGroupId"):
        permission["UserIdGroupPairs"] = [{"GroupId": r.inputs["referencedSecurityGroupId"], **described}]
    else:
        raise Invalid("a rule needs cidrIpv4, cidrIpv6, prefixListId or referencedSecurityGroupId")
    authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    rule = authorize(GroupId=r.inputs["securityGroupId"], IpPermissions=[permission])["SecurityGroupRules"][0]
    rule_id = rule["SecurityGroupRuleId"]
    return rule_id, {
        "securityGroupRuleId": rule_id,
        "arn": f"arn:aws:ec2:{ctx.region}:{rule.get('GroupOwnerId', '')}:security-group-rule/{rule_id}",
    }


@handles("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", CONTROL)
def ingress_rule(ctx: Context, r: Declared) -> Created:
    return _rule(ctx, r, egress=False)


@handles("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", CONTROL)
def egress_rule(ctx: Context, r: Declared) -> Created:
    return _rule(ctx, r, egress=True)
