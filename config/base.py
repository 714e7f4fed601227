"""The base of every config model, and the small models several layers share."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from config.fields import HttpsUrl, ImageRegistry, ImageTag, K8sName, PinnedVersion, ProvisionerPath, UserName

# What an encrypted (`secure:`) value reads as where it cannot be decrypted (offline check, plan).
ENCRYPTED_PLACEHOLDER = "[encrypted]"

# A secret: never empty, bounded; prints as ********** and reaches resources only as a
# Pulumi secret.
Secret = Annotated[SecretStr, Field(min_length=1, max_length=65536)]


def to_camel(name: str) -> str:
    """snake_case → camelCase at underscores only (so `k3s` stays `k3s`)."""
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class Model(BaseModel):
    """Base of every config model: camelCase keys, unknown keys refused, immutable."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )


class ChartSource(Model):
    """Where a Helm chart comes from: a repository and a pinned version, or a local chart."""

    repository: HttpsUrl = Field(description="Helm repository URL (https).")
    name: K8sName = Field(description="Chart name in the repository.")
    version: PinnedVersion = Field(description="Pinned chart version (no ranges).")
    local_path: ProvisionerPath | None = Field(
        default=None,
        description="A local chart `.tgz` or directory on the provisioner (airgap); wins over the repository.",
    )


_BRANCHES = re.compile(r"(main|master|develop|dev|trunk|HEAD|release-[\w.]+|releases?/[\w./-]+)")


def _pinned_url(value: str) -> str:
    """A raw GitHub file URL must pin a tag or a commit, never a branch (it would move)."""
    parts = value.split("/")
    if len(parts) > 5 and parts[2] == "raw.githubusercontent.com" and _BRANCHES.fullmatch(parts[5]):
        raise ValueError(f"{value!r} points at branch {parts[5]!r}: pin a tag or a commit instead")
    return value


class ManifestSource(Model):
    """A pinned upstream manifest: its URL, or a local copy for airgap."""

    url: Annotated[HttpsUrl, AfterValidator(_pinned_url)] = Field(
        description="Upstream URL of the manifest, pinned to a tag or a commit."
    )
    local_path: ProvisionerPath | None = Field(
        default=None, description="Local copy on the provisioner (airgap); wins over `url`."
    )


def pinned(url: str) -> Any:
    """A ManifestSource field defaulting to the pinned upstream URL."""
    return Field(default_factory=lambda: ManifestSource(url=url))


class Image(Model):
    registry: ImageRegistry | None = Field(
        default=None, description="Image registry mirror (e.g. opencsg-registry.cn-beijing.cr.aliyuncs.com)."
    )
    tag: ImageTag | None = Field(default=None, description="Image tag override (default: the chart's; not `latest`).")


class Admin(Model):
    username: Annotated[UserName, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{2,31}$")] = "admin"
    password: Secret | None = Field(default=None, description="Admin password (secret); generated when absent.")
