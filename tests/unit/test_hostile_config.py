"""Hostile config, generated, over the WHOLE model (issue 16).

The field list comes from the model itself (`string_fields`): every string field, list item
and mapping key of every section, so a new field is covered without editing this file. For
each one, hypothesis generates hostile text (control characters, newlines, `%` scope ids,
quotes, `$(...)`, YAML/TOML/Corefile syntax, look-alike unicode, very long) and the config
loader must either refuse it naming that field's key path, or accept a value that is inert:
printable, one line, bounded. Values accepted for the fields that reach node files are then
rendered into those files (config.yaml, registries.yaml, the /etc/hosts block, the fstab
line, the CoreDNS block) and parsed back: the structure must be the baseline's, with the
value verbatim as data.

Secrets (any text is a valid password: they travel base64-encoded, as Pulumi secrets) and
pass-through chart values / PV sources (free-form structured data) are not string fields
here; tests/unit/test_secret_markers.py follows the secrets.

`make test` runs a fixed, derandomized profile; `make fuzz` the same properties with many
more random examples (HYPOTHESIS_PROFILE=fuzz) and prints what it tried.
"""

from __future__ import annotations

import contextvars
import copy
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from config.fields import _unsafe_chars
from config.load import ConfigError, format_loc, validate
from config.stack import StackConfig
from tests.conftest import HOST_KEY, ROOT

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
STATS: Counter[str] = Counter()  # printed by conftest's terminal summary (make fuzz)


def maximal() -> dict[str, Any]:
    """A valid stack config with every section and optional sub-model set."""

    def chart(name: str) -> dict[str, str]:
        return {
            "repository": "https://charts.example.com/x",
            "name": name,
            "version": "1.0.0",
            "localPath": f"charts/{name}",
        }

    manifest = lambda n: {"url": f"https://example.com/v1.0.0/{n}.yaml", "localPath": f"manifests/{n}.yaml"}  # noqa: E731
    node = lambda name, host: {  # noqa: E731
        "name": name,
        "host": host,
        "port": 2222,
        "user": "ops",
        "hostKey": HOST_KEY,
        "nodeIp": host,
        "flannelIface": "eth0",
        "labels": {"tier": "gpu"},
        "taints": ["dedicated=ai:NoSchedule"],
        "gpu": False,
        "gpuModel": "Tesla-V100",
        "extraArgs": ["--kubelet-arg=max-pods=200"],
    }
    pg = {"host": "pg.example.com", "user": "csghub", "password": "p", "sslmode": "require", "timezone": "Etc/UTC"}
    return {
        "cluster": {
            "ssh": {
                "user": "ops",
                "port": 2222,
                "privateKeyPath": "keys/id_ed25519",
                "bastion": {"host": "jump.example.com", "user": "jump", "hostKey": HOST_KEY, "privateKey": "k"},
            },
            "k3s": {
                "version": "v1.30.4+k3s1",
                "installerSha256": "0" * 64,
                "airgap": {
                    "binary": "airgap/k3s",
                    "images": "airgap/images.tar.zst",
                    "installScript": "airgap/install.sh",
                },
                "token": "t",
                "disable": ["traefik"],
                "tlsSan": ["k8s.example.com"],
                "bindAddress": "10.0.0.10",
                "apiEndpoint": "k8s.example.com",
                "registries": {
                    "mirrors": {
                        "docker.io": {"endpoints": ["https://mirror.example.com"], "rewrite": {"^(.*)$": "lib/$1"}}
                    },
                    "configs": {
                        "mirror.example.com": {
                            "auth": {"username": "pull", "password": "p"},
                            "tls": {"caFile": "certs/mirror-ca.crt"},
                        }
                    },
                },
            },
            "servers": [node("s0", "10.0.0.10")],
            "agents": [node("a0", "10.0.1.10")],
            "gpu": {"airgap": {"packages": ["gpu/nvidia-driver.deb"]}},
        },
        "storage": {
            "mode": "local-path",
            "localStatic": {
                "diskDir": "/mnt/fake-disks",
                "backingDir": "/srv/disks/backing",
                "className": "local-disks",
                "chart": chart("lsp"),
            },
            "nfs": {"server": "10.0.0.50", "path": "/export/ai", "className": "nfs-rwx", "chart": chart("nfs")},
        },
        "knative": {
            "domain": "app.internal",
            "scaleToZeroGracePeriod": "60m",
            "kourier": {"serviceType": "NodePort", "httpNodePort": 31080},
            "manifests": {k: manifest(k) for k in ("crds", "core", "kourier")},
        },
        "gateway": {
            "serviceType": "NodePort",
            "tls": {"certificate": PEM, "key": "k", "secretName": "csghub-tls"},
            "address": "10.0.0.10",
        },
        "csghub": {
            "namespace": "csghub",
            "chart": {**chart("csghub"), "version": "1.17.0"},
            "domain": "ai.example.com",
            "publicDomain": "apps.example.com",
            "image": {"registry": "registry.example.com/mirror", "tag": "v1.17.0"},
            "persistence": {"storageClass": "local-path"},
            "services": {
                "postgresql": pg,
                "redis": {"host": "redis.example.com", "password": "p"},
                "mongo": {"host": "mongo.example.com", "user": "m", "password": "p"},
                "objectStore": {
                    "endpoint": "https://s3.example.com",
                    "accessKey": "a",
                    "secretKey": "s",
                    "region": "r1",
                },
                "registry": {
                    "registry": "reg.example.com:5000",
                    "repository": "csghub",
                    "username": "u",
                    "password": "p",
                },
                "gitaly": {"host": "gitaly.example.com", "token": "t", "storage": "default"},
            },
            "admin": {"username": "platform-admin", "password": "p"},
            "credentials": {"lokiPassword": "p", "prometheusPassword": "p"},
        },
        "dataflow": {
            "enabled": True,
            "namespace": "dataflow",
            "domain": "df.example.com",
            "tlsSecretName": "df-tls",
            "externalUrl": "https://ai.example.com",
            "image": {"registry": "registry.example.com", "tag": "v1.17.0"},
            "databases": {
                "postgresql": {"mode": "external", "external": pg},
                "redis": {"mode": "external", "external": {"host": "redis.example.com", "password": "p"}},
                "mongo": {"mode": "external", "external": {"host": "mongo.example.com", "user": "m", "password": "p"}},
                "dataflowDatabase": "csghub_dataflow",
                "labelStudioDatabase": "csghub_label_studio",
            },
            "persistence": {"storageClass": "nfs-rwx", "size": "10Gi"},
        },
        "octopus": {
            "namespace": "octopus",
            "repo": {
                "url": "https://harbor.example.com/chartrepo/octopus",
                "chart": "octopus",
                "caFile": "certs/harbor-ca.crt",
                "certFile": "certs/client.crt",
                "keyFile": "certs/client.key",
                "username": "robot",
                "password": "p",
                "localPath": "charts/octopus",
            },
            "nodeSelectorKey": "octopus.openi.pcl.cn/node",
            "nodeSelectorValue": "server",
            "nodes": ["a0"],
            "imageRegistry": "harbor.example.com",
            "imagePathname": "octopus",
            "bitnamiRepository": "bitnamilegacy",
            "ingressPaths": {"grafana": "/grafana"},
            "volumes": {
                v: {"size": "1Gi", "source": {"nfs": {"server": "10.0.0.50", "path": f"/export/{v}"}}}
                for v in ("minio", "mysql", "redis", "logger", "logstash")
            },
            "credentials": {
                "harborUser": "octopus-push",
                "adminUser": "admin",
                **{
                    k: "p"
                    for k in (
                        "tasksetAdminToken",
                        "minioAccessKey",
                        "minioSecretKey",
                        "mysqlRootPassword",
                        "redisPassword",
                        "harborPassword",
                        "adminPassword",
                        "grafanaPassword",
                    )
                },
            },
        },
        "openhydra": {
            "enabled": True,
            "manifests": {
                k: manifest(k)
                for k in ("localPath", "mysqlOperatorCrds", "mysqlOperator", "openHydra", "reverseProxy", "ui")
            },
            "mysqlRootHost": "10.42.0.0/255.255.0.0",
            "mysqlRootPassword": "p",
            "server": {
                "gpuDriver": "nvidia.com/gpu",
                "datasetBasePath": "/srv/dataset",
                "courseBasePath": "/srv/course",
            },
            "admin": {"username": "teacher", "password": "p"},
            "nodes": ["a0"],
        },
    }


@dataclass(frozen=True)
class Field:
    path: tuple[str | int, ...]  # where the text goes in the raw config
    kind: str  # "value" (a string leaf or list item) or "key" (a mapping key)

    @property
    def key(self) -> str:
        """The key path a refusal must name (the mapping itself, for a key)."""
        return format_loc(self.path)

    def __str__(self) -> str:
        return f"{self.key}{' (key)' if self.kind == 'key' else ''}"


def _origin(annotation: Any) -> Any:
    return typing.get_origin(annotation)


def _unwrap(annotation: Any) -> Any:
    """Optional[X] → X, Annotated[X, ...] → X (repeatedly)."""
    while True:
        if _origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif _origin(annotation) in (typing.Union, __import__("types").UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _is_text(annotation: Any) -> bool:
    a = _unwrap(annotation)
    if a is str:
        return True
    return _origin(a) is typing.Literal and all(isinstance(v, str) for v in typing.get_args(a))


def string_fields(model: type[BaseModel], raw: Any, path: tuple[str | int, ...] = ()) -> list[Field]:
    """Every string field, list item and mapping key of MODEL, at the paths RAW (a raw
    config for MODEL) reaches. A sub-model that RAW does not reach is an error: add it to
    maximal(), so that the new fields it brings are covered."""
    out: list[Field] = []
    for name, info in model.model_fields.items():
        alias = info.alias or name
        ann = _unwrap(info.annotation)
        here = (*path, alias)
        value = raw.get(alias) if isinstance(raw, dict) else None
        if _is_text(ann):
            out.append(Field(here, "value"))
        elif isinstance(ann, type) and issubclass(ann, SecretStr):
            continue
        elif isinstance(ann, type) and issubclass(ann, BaseModel):
            required = any(f.is_required() for f in ann.model_fields.values())
            assert isinstance(value, dict) or not required, f"maximal() does not reach {format_loc(here)}: add it"
            out += string_fields(ann, value or {}, here)
        elif _origin(ann) is list:
            (item,) = typing.get_args(ann)
            if _is_text(item):
                out.append(Field((*here, 0), "value"))
            elif isinstance(_unwrap(item), type) and issubclass(_unwrap(item), BaseModel):
                assert isinstance(value, list) and value, f"maximal() has no {format_loc(here)}[0]: add one"
                out += string_fields(_unwrap(item), value[0], (*here, 0))
        elif _origin(ann) is dict:
            k, v = typing.get_args(ann)
            if not _is_text(k):
                continue
            if v is Any or _unwrap(v) is Any:
                continue  # pass-through chart values, PV sources: free-form data
            assert isinstance(value, dict) and value, f"maximal() has no entry in {format_loc(here)}: add one"
            first = next(iter(value))
            out.append(Field(here, "key"))
            if _is_text(v):
                out.append(Field((*here, first), "value"))
            elif isinstance(_unwrap(v), type) and issubclass(_unwrap(v), BaseModel):
                out += string_fields(_unwrap(v), value[first], (*here, first))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def full_baseline() -> dict[str, Any]:
    """maximal() with every default written out (so every sub-model is reachable)."""
    cfg = validate(maximal(), ROOT, review=True).config
    return _plain(cfg.model_dump(by_alias=True, exclude_none=True))


BASE = full_baseline()
FIELDS = string_fields(StackConfig, BASE)


def put(raw: dict[str, Any], field: Field, text: str) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    node: Any = out
    for key in field.path[:-1]:
        node = node[key] if isinstance(node, list) else node.setdefault(key, {})
    last = field.path[-1]
    if field.kind == "key":
        mapping = node[last]
        first = next(iter(mapping))
        node[last] = {text: mapping[first], **{k: v for k, v in mapping.items() if k != first}}
    elif isinstance(node, list) and isinstance(last, int):
        if last < len(node):
            node[last] = text
        else:
            node.append(text)
    elif isinstance(last, int):  # a list field absent from the baseline
        raise AssertionError(f"{field}: maximal() has no list here")
    else:
        if isinstance(node.get(last), list):
            node[last] = [text]
        else:
            node[last] = text
    return out


# Pieces of text that break the files the values reach, or the shells that write them.
HOSTILE = [
    "\n",
    "\r\n",
    "\x00",
    "\x1b[2J",
    "\u2028",
    "\u202e",
    "\ufeff",
    "%eth0",
    "%$(id)",
    "$(reboot)",
    "`id`",
    "; rm -rf /",
    "' \"",
    "\\",
    "}\n. {\n forward . 8.8.8.8\n}",
    "# BEGIN ai-platform (managed by pulumi)",
    "a: b",
    "- x",
    "{x: y}",
    "[[x]]",
    "key = 'v'",
    " ",
    "\t",
    "..",
    "/../..",
    "//",
    "*",
    "latest",
    "ＡＢＣ",
    "\u212a",  # KELVIN SIGN: lower-cases to 'k'
    "999.999.999.999",
    "10.0.0.1%25eth0",
    "http://user:pw@host",
    "é",
]
VALID_LOOKING = ["10.0.0.5", "example.com", "/srv/data", "a", "v1.2.3", "x-y", "nvidia.com/gpu"]


def hostile_text() -> st.SearchStrategy[str]:
    piece = st.one_of(st.sampled_from(HOSTILE), st.sampled_from(VALID_LOOKING), st.text(max_size=8))
    joined = st.lists(piece, min_size=1, max_size=4).map("".join)
    long = st.integers(min_value=300, max_value=5000).map(lambda n: "a" * n)
    return st.one_of(joined, long).filter(lambda t: _unsafe_chars(t) or _is_hostile(t))


def _is_hostile(text: str) -> bool:
    """Everything the generator makes that a careful value would not hold: kept broad on purpose."""
    return bool(
        any(h in text for h in HOSTILE if h.strip())
        or any(c.isspace() for c in text)
        or not text.isascii()
        or len(text) > 253
        or not text
    )


def outcome(raw: dict[str, Any]) -> list[str] | None:
    """The problems' key paths, or None when accepted."""
    try:
        validate(raw, ROOT, review=True)
    except ConfigError as err:
        return [p.path for p in err.problems]
    return None


def test_the_baseline_is_valid() -> None:
    assert outcome(BASE) is None


def test_every_section_is_reached() -> None:
    sections = {f.path[0] for f in FIELDS}
    assert sections == set(StackConfig.model_fields) - set(), sections
    assert len(FIELDS) > 150, len(FIELDS)


@pytest.mark.parametrize("field", FIELDS, ids=str)
@given(text=hostile_text())
def test_hostile_text_is_refused_naming_the_key_or_inert(field: Field, text: str) -> None:
    raw = put(BASE, field, text)
    paths = outcome(raw)
    STATS["cases"] += 1
    if paths is not None:
        STATS["refused"] += 1
        assert any(p == field.key or p.startswith((f"{field.key}.", f"{field.key}[")) for p in paths), (
            f"{field}: {text!r} refused, but no problem names it: {paths}"
        )
        return
    STATS["accepted"] += 1
    assert not _unsafe_chars(text), f"{field}: accepted {text!r}, which holds control or line-break characters"
    assert len(text) <= 1024, f"{field}: accepted {len(text)} characters"


# -- values accepted where they reach node files: rendered, parsed back, structure unchanged ----

NODE_FILE_FIELDS = [
    f
    for f in FIELDS
    if f.path[:2] in (("cluster", "servers"), ("cluster", "agents"))
    or f.path[:3] == ("cluster", "k3s", "registries")
    or f.path[:3]
    in (("cluster", "k3s", "tlsSan"), ("cluster", "k3s", "bindAddress"), ("cluster", "k3s", "apiEndpoint"))
    or f.path[:2] in (("storage", "localStatic"),)
    or f.path[:2] in (("csghub", "domain"), ("csghub", "publicDomain"), ("gateway", "address"))
]


def node_files(raw: dict[str, Any]) -> dict[str, Any]:
    """What the nodes and CoreDNS get from a config, parsed: config.yaml and registries.yaml
    as YAML, the hosts block and the fstab lines as token lists, the Corefile as lines."""
    return contextvars.copy_context().run(_node_files, raw)


def _node_files(raw: dict[str, Any]) -> dict[str, Any]:
    from components.csghub import coredns_corefile, endpoints
    from config import files

    files.REVIEW.set(files.Review())  # the provisioner's CA files are not here
    from components.k3s import plan_nodes, registries_files

    cfg = validate(raw, ROOT, review=True).config
    out: dict[str, Any] = {}
    for p in plan_nodes(cfg.cluster):
        out[f"config.yaml {p.node.name}"] = yaml.safe_load(p.config_yaml)
    regs = registries_files(cfg.cluster, Path("/nonexistent"), None)
    out["registries.yaml"] = yaml.safe_load(regs.yaml)
    ep = endpoints(cfg.csghub, cfg.gateway)
    address = cfg.dns_address() or "10.0.0.10"
    out["hosts"] = f"{address} {' '.join(ep.names())}".split(" ")
    ls = cfg.storage.local_static
    out["fstab"] = [f"{ls.backing_dir}/vol{i} {ls.disk_dir}/vol{i} none bind 0 0".split(" ") for i in (1, 2)]
    corefile = coredns_corefile(ep, address)
    out["corefile"] = {k: [line.strip().split(" ")[0] for line in v.splitlines()] for k, v in corefile.items()}
    return out


def shape(value: Any) -> Any:
    """The structure of parsed data: mappings' keys and lists' lengths, leaves as their type."""
    if isinstance(value, dict):
        return {"<map>": len(value), **{str(type(k)): 1 for k in value}}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


BASE_FILES = node_files(BASE)


@pytest.mark.parametrize("field", NODE_FILE_FIELDS, ids=str)
@given(text=hostile_text())
def test_accepted_values_reach_node_files_as_data(field: Field, text: str) -> None:
    raw = put(BASE, field, text)
    if outcome(raw) is not None:
        return  # refused: the property above names the key
    STATS["node-file renders"] += 1
    rendered = node_files(raw)
    assert rendered.keys() == BASE_FILES.keys()
    for name, parsed in rendered.items():
        assert shape(parsed) == shape(BASE_FILES[name]), f"{field}={text!r} changed the structure of {name}"
