"""Credentials: the configured secret, or a generated one. Either way a Pulumi secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_random as random
from pydantic import SecretStr


def given_or_generated(name: str, given: SecretStr | None, length: int, parent: pulumi.Resource) -> pulumi.Output[str]:
    """`given` as a secret, else a RandomPassword `name` (letters and digits, every class present:
    safe in YAML, URLs, shell and the components' own password rules)."""
    if given is not None:
        return pulumi.Output.secret(given.get_secret_value())
    generated = random.RandomPassword(
        name,
        length=length,
        special=False,
        min_lower=1,
        min_upper=1,
        min_numeric=1,
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["result"]),
    )
    return pulumi.Output.secret(generated.result)  # type: ignore[arg-type]


def secret_leaves(tree: Any, secret: Callable[[str], Any]) -> Any:
    """TREE with every scalar leaf wrapped by SECRET."""
    if isinstance(tree, dict):
        return {k: secret_leaves(v, secret) for k, v in tree.items()}
    if isinstance(tree, list):
        return [secret_leaves(v, secret) for v in tree]
    return tree if tree is None or isinstance(tree, bool | int | float) else secret(str(tree))
