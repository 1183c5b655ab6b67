"""cdk-nag (v3) acknowledgments: every suppression names its rule, the exact findings, and why."""

from __future__ import annotations

from collections.abc import Iterable

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, findings: Iterable[str] = ()) -> None:
    """Acknowledge ``rule`` on ``scope`` and its children; with ``findings``, only those (``IAM5[Resource::*]``)."""
    ids = [f"{rule}[{finding}]" for finding in findings] or [rule]
    validations = cdk.Validations.of(scope)
    for rule_id in ids:
        validations.acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def logical_id(element: cdk.CfnElement) -> str:
    """The element's logical id as a plain string (findings on resources name it)."""
    stack = cdk.Stack.of(element)
    return stack.resolve(stack.get_logical_id(element))
