"""Every reusable field type of the config model, each validated to what its consumer accepts.

A value that passes here reaches node files written as root (`config.yaml`,
`registries.yaml`, `/etc/hosts`, `/etc/fstab`), script arguments, CoreDNS and Kubernetes
objects. So each type accepts exactly its syntax and nothing around it:
- patterns are matched whole (`re.fullmatch`: `$` would accept a trailing newline);
- no control or format characters, no line or paragraph separators, ASCII where the
  consumer is ASCII (host names, labels, paths): a letter that lower-cases to ASCII is
  not ASCII;
- addresses are normalised (`2001:DB8:0:0::10` → `2001:db8::10`, names lower-cased), so
  one machine spelled two ways is one machine; IPv6 scope ids (`%eth0`) are refused;
- lengths are bounded.
Messages say what is expected; the loader puts the key path in front.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re
import unicodedata
import warnings
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

MAX_TEXT = 1024

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_K3S_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}\.\d{1,3}\+k3s\d{1,3}")
_QUANTITY = re.compile(r"\d{1,12}(\.\d{1,6})?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?")
_SEMVER = re.compile(r"v?\d{1,6}\.\d{1,6}\.\d{1,6}([-+][0-9A-Za-z.-]{1,64})?")
_DURATION = re.compile(r"\d{1,6}[smh]")
_IFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]{0,63}")
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_PATH_CHARS = re.compile(r"/[A-Za-z0-9._+@,=:/-]*")
_URL_PATH = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")
_TIMEZONE = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}")
_HOST_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# Top-level system directories a configured directory may not be (it would be created,
# bind-mounted over or removed when empty).
_SYSTEM_DIRS = frozenset(
    "/ /bin /boot /dev /etc /home /lib /lib32 /lib64 /media /mnt /opt /proc /root /run /sbin /srv /sys /tmp /usr "
    "/var /var/lib /var/log /usr/local /usr/bin /usr/sbin /usr/lib".split()
)


def _unsafe_chars(value: str) -> list[str]:
    """Characters no plain config string may hold: control (Cc), format (Cf), line and
    paragraph separators (Zl, Zp), unassigned, surrogates, private use."""
    return [c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cn", "Cs", "Co")]


def text(value: str) -> str:
    """Any printable text: no control characters or line breaks, bounded."""
    bad = _unsafe_chars(value)
    if bad:
        raise ValueError(f"{value!r} contains control or line-break characters ({', '.join(map(repr, bad[:3]))})")
    if len(value) > MAX_TEXT:
        raise ValueError(f"is {len(value)} characters long; at most {MAX_TEXT}")
    return value


def _word(value: str, what: str) -> str:
    """Printable text without whitespace (one token in a file or a command line)."""
    text(value)
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not {what} (no whitespace, not empty)")
    return value


def _ascii(value: str, what: str) -> None:
    if not value.isascii():
        raise ValueError(f"{value!r} is not {what}: only ASCII letters, digits and punctuation")


# -- addresses --------------------------------------------------------------------------


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address VALUE spells, or None. No IPv6 scope ids, no surrounding blanks."""
    if "%" in value or value != value.strip() or not value.isascii():
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def is_ip(value: str) -> bool:
    return parse_ip(value) is not None


def _ip(value: str) -> str:
    ip = parse_ip(value)
    if ip is None:
        hint = " (IPv6 scope ids like %eth0 are not accepted)" if "%" in value else ""
        raise ValueError(f"{value!r} is not an IP address{hint}")
    return str(ip)


def _hostname(value: str, *, min_labels: int, what: str) -> str:
    _ascii(value, what)
    name = value.lower()
    labels = name.split(".")
    if (
        len(name) > 253
        or len(labels) < min_labels
        or not all(_DNS_LABEL.fullmatch(lbl) for lbl in labels)
        # all-numeric names are IP addresses or nothing (`999.999.999.999`, `10.0.0`)
        or all(lbl.isdigit() for lbl in labels)
        or labels[-1].isdigit()
    ):
        raise ValueError(f"{value!r} is not {what}")
    return name


def _dns_name(value: str) -> str:
    if is_ip(value):
        raise ValueError(f"{value!r} is an IP address; a DNS name is expected (e.g. example.com)")
    return _hostname(
        value, min_labels=2, what="a DNS name (lower-case labels of letters, digits and '-', e.g. example.com)"
    )


def _host(value: str) -> str:
    ip = parse_ip(value)
    if ip is not None:
        return str(ip)
    return _hostname(value, min_labels=1, what="an IP address or a host name")


def _cidr(value: str) -> str:
    if "%" in value or not value.isascii() or value != value.strip():
        raise ValueError(f"{value!r} is not a CIDR network")
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR network ({exc})") from None


def _host_port(value: str) -> str:
    """host[:port] as registries and image references name a registry."""
    _ascii(value, "a registry host")
    if value.startswith("["):  # [v6]:port
        host, sep, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else rest
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{value!r} is not host[:port]")
        h = _ip(host)
        return f"[{h}]" + (f":{_port_text(port, value)}" if port else "")
    host, sep, port = value.rpartition(":") if value.count(":") == 1 else (value, "", "")
    if not sep:
        host = value
    if ":" in host:
        raise ValueError(f"{value!r} is not host[:port] (write an IPv6 address in brackets: [2001:db8::1]:5000)")
    h = _host(host)
    return h + (f":{_port_text(port, value)}" if sep else "")


def _port_text(port: str, whole: str) -> int:
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{whole!r}: {port!r} is not a port (1-65535)")
    return int(port)


def _registry_key(value: str) -> str:
    """A registries.yaml mirror/config key: host[:port], or `*` (every registry)."""
    return "*" if value == "*" else _host_port(value)


def _repo_path(value: str) -> str:
    if len(value) > 255 or not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*", value):
        raise ValueError(f"{value[:80]!r} is not a repository path (lower-case, '/'-separated, at most 255)")
    return value


def _image_registry(value: str) -> str:
    """An image registry with an optional repository prefix: host[:port][/path]."""
    head, _, path = value.partition("/")
    out = _host_port(head)
    if path:
        if not re.fullmatch(r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*", path):
            raise ValueError(f"{value!r}: {path!r} is not a repository path (lower-case, '/'-separated)")
        out += "/" + path
    return out


def url_host(host: str) -> str:
    """HOST as it goes into a URL: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _url(value: str, schemes: tuple[str, ...]) -> str:
    _word(value, "a URL")
    _ascii(value, "a URL")
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = " or ".join(f"{s}://" for s in schemes)
        raise ValueError(f"{value!r} is not a URL with scheme {allowed}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(f"{value!r} holds credentials: give them in their own (secret) keys, never in a URL")
    if not parts.netloc or parts.fragment:
        raise ValueError(f"{value!r} is not a URL (scheme://host[:port][/path])")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"{value!r} has an invalid port") from None
    _host(parts.hostname or "")
    if not _URL_PATH.fullmatch(parts.path) or (parts.query and not _URL_PATH.fullmatch(parts.query)):
        raise ValueError(f"{value!r} has characters a URL path may not hold")
    return value


def _https_url(value: str) -> str:
    return _url(value, ("https",))


def _http_url(value: str) -> str:
    return _url(value, ("https", "http"))


# -- names --------------------------------------------------------------------------------


def _rfc1123_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name (lower-case letters, digits and '-', at most 63, RFC 1123)")
    return value


def _rfc1123_subdomain(value: str) -> str:
    if len(value) > 253 or not all(_DNS_LABEL.fullmatch(lbl) for lbl in value.split(".")):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes name (lower-case labels of letters, digits and '-', "
            "separated by '.', at most 253; RFC 1123)"
        )
    return value


def _label_key(value: str) -> str:
    prefix, sep, name = value.rpartition("/")
    ok = bool(_LABEL_NAME.fullmatch(name)) and (not sep or (bool(prefix) and _is_subdomain(prefix)))
    if not ok:
        raise ValueError(
            f"{value!r} is not a label key ([prefix/]name: name at most 63 of letters, digits, '-', '_', '.', "
            "starting and ending alphanumeric; prefix a DNS subdomain)"
        )
    return value


def _is_subdomain(value: str) -> bool:
    return len(value) <= 253 and all(_DNS_LABEL.fullmatch(lbl) for lbl in value.split("."))


def _label_value(value: str) -> str:
    if value and not _LABEL_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a label value (empty, or at most 63 of letters, digits, '-', '_', '.', "
            "starting and ending alphanumeric)"
        )
    return value


_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _taint(value: str) -> str:
    head, sep, effect = value.rpartition(":")
    key, eq, val = head.partition("=")
    try:
        if not sep or effect not in _EFFECTS:
            raise ValueError
        _label_key(key)
        if eq:
            _label_value(val)
    except ValueError:
        raise ValueError(f"{value!r} is not a taint (key[=value]:NoSchedule|PreferNoSchedule|NoExecute)") from None
    return value


def parse_taint(value: str) -> tuple[str, str | None, str]:
    """A validated taint → (key, value or None, effect)."""
    head, _, effect = value.rpartition(":")
    key, eq, val = head.partition("=")
    return key, (val if eq else None), effect


def _version(pattern: re.Pattern[str], example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a pinned version (e.g. {example}); ranges and 'latest' are refused")
        return value

    return AfterValidator(check)


def _image_tag(value: str) -> str:
    if not _IMAGE_TAG.fullmatch(value) or value == "latest":
        raise ValueError(f"{value!r} is not a pinned image tag (letters, digits, '_', '.', '-'; not 'latest')")
    return value


def _quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"{value!r} is not a storage quantity (e.g. 10Gi)")
    return value


def _duration(value: str) -> str:
    if not _DURATION.fullmatch(value):
        raise ValueError(f"{value!r} is not a duration (a number and s, m or h, e.g. 60m)")
    return value


def _iface(value: str) -> str:
    if not _IFACE.fullmatch(value) or value in (".", ".."):
        raise ValueError(
            f"{value!r} is not a network interface name (at most 15 of letters, digits, '_', '.', ':', '-')"
        )
    return value


def _user(value: str) -> str:
    if not _USER.fullmatch(value):
        raise ValueError(f"{value!r} is not a user name (a letter or '_', then letters, digits, '_', '.', '@', '-')")
    return value


def _timezone(value: str) -> str:
    if len(value) > 64 or not _TIMEZONE.fullmatch(value):
        raise ValueError(f"{value!r} is not a time zone name (e.g. Etc/UTC, Asia/Shanghai)")
    return value


def _node_path(value: str) -> str:
    """An absolute, normalised path on a node: it lands in /etc/fstab, script arguments,
    hostPath volumes. No whitespace, quotes or shell characters; not a system directory."""
    _ascii(value, "an absolute path")
    if not _PATH_CHARS.fullmatch(value) or posixpath.normpath(value) != value or value.startswith("//"):
        raise ValueError(
            f"{value!r} is not an absolute, normalised path (letters, digits and ._+@,=:- between '/'; "
            "no '..', '//', trailing '/' or whitespace)"
        )
    if any(len(part) > 255 for part in value.split("/")):
        raise ValueError(f"{value[:40]!r}...: a path component is longer than 255 characters")
    if value in _SYSTEM_DIRS:
        raise ValueError(f"{value!r} is a system directory; name a directory of its own below it")
    return value


class _ProvisionerFile:
    """Marks a field whose value names a file on the provisioner (config/files.py finds them)."""

    def __repr__(self) -> str:
        return "PROVISIONER_FILE"


PROVISIONER_FILE = _ProvisionerFile()


def _provisioner_path(value: str) -> str:
    """A path on the provisioner (relative to the project directory, or absolute)."""
    _word(value, "a file path")
    if any(len(part.encode()) > 255 for part in value.split("/")):
        raise ValueError(f"{value[:40]!r}...: a path component is longer than 255 bytes")
    return value


def _regex(value: str) -> str:
    text(value)
    # containerd compiles rewrites with Go's RE2: no look-around, no back-references.
    if re.search(r"\(\?[=!<]|\\[1-9]|\(\?P=", value):
        raise ValueError(f"{value!r} uses look-around or back-references, which containerd's RE2 does not support")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "possible nested set": still valid
            re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression ({exc})") from None
    return value


def _rewrite_target(value: str) -> str:
    return _word(value, "a rewrite replacement")


def _host_key(value: str) -> str:
    text(value)
    parts = value.split()
    if len(parts) < 2 or parts[0] not in _HOST_KEY_TYPES:
        raise ValueError(
            "a host key is one public key line: '<type> <base64>' (e.g. 'ssh-ed25519 AAAA...'), "
            f"type one of {', '.join(_HOST_KEY_TYPES[:5])}"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the key of {parts[0]!r} is not base64") from None
    # The blob starts with its own type (uint32 length + name): a pasted key of another
    # type, or a truncated one, is refused.
    n = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4 : 4 + n].decode("ascii", "replace") != parts[0]:
        raise ValueError(f"the base64 of the {parts[0]} key does not hold an {parts[0]} key")
    return f"{parts[0]} {parts[1]}"


def _k3s_flag(value: str) -> str:
    _word(value, "one '--flag[=value]'")
    if not re.fullmatch(r"--[a-z0-9][a-z0-9-]*(=[A-Za-z0-9._,:=/+@%-]*)?", value):
        raise ValueError(
            f"{value!r} is not one '--flag[=value]' (value of letters, digits and ._,:=/+@%-; "
            "no quotes, spaces or shell characters)"
        )
    return value


def _pem(value: str) -> str:
    if len(value) > 65536 or any(_unsafe_chars(line.rstrip("\r")) for line in value.split("\n")):
        raise ValueError("is not PEM text (printable lines, at most 64 KiB)")
    if "-----BEGIN " not in value:
        raise ValueError("is not PEM text (no -----BEGIN ... line)")
    return value


def _no_blank(value: str) -> str:
    if not value:
        raise ValueError("may not be empty")
    return value


Text = Annotated[str, AfterValidator(text)]
Word = Annotated[str, AfterValidator(lambda v: _word(v, "a single word"))]
DnsName = Annotated[str, AfterValidator(_dns_name)]
Host = Annotated[str, AfterValidator(_host)]
IpAddress = Annotated[str, AfterValidator(_ip)]
Cidr = Annotated[str, AfterValidator(_cidr)]
HostPort = Annotated[str, AfterValidator(_host_port)]
RegistryKey = Annotated[str, AfterValidator(_registry_key)]
ImageRegistry = Annotated[str, AfterValidator(_image_registry)]
RepoPath = Annotated[str, AfterValidator(_repo_path)]  # an image repository path (no host)
# A pinned image reference: registry/path:tag (no `latest`).
ImageRef = Annotated[
    str, Field(pattern=r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:v?[0-9][A-Za-z0-9._-]*$", max_length=255)
]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
NodeName = Annotated[str, AfterValidator(_rfc1123_label)]
K8sName = Annotated[str, AfterValidator(_rfc1123_label)]  # namespaces, release and service names
K8sObjectName = Annotated[str, AfterValidator(_rfc1123_subdomain)]  # secrets, classes, config maps
LabelKey = Annotated[str, AfterValidator(_label_key)]
LabelValue = Annotated[str, AfterValidator(_label_value)]
Taint = Annotated[str, AfterValidator(_taint)]
K3sVersion = Annotated[str, _version(_K3S_VERSION, "v1.30.4+k3s1")]
PinnedVersion = Annotated[str, _version(_SEMVER, "1.17.0")]
ImageTag = Annotated[str, AfterValidator(_image_tag)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Duration = Annotated[str, AfterValidator(_duration)]
Iface = Annotated[str, AfterValidator(_iface)]
UserName = Annotated[str, AfterValidator(_user)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
NodePath = Annotated[str, AfterValidator(_node_path)]
ProvisionerPath = Annotated[str, AfterValidator(_provisioner_path), PROVISIONER_FILE]
Regex = Annotated[str, AfterValidator(_regex)]
RewriteTarget = Annotated[str, AfterValidator(_rewrite_target)]
HostKey = Annotated[str, AfterValidator(_host_key)]
K3sFlag = Annotated[str, AfterValidator(_k3s_flag)]
Port = Annotated[int, Field(ge=1, le=65535)]
NodePort = Annotated[int, Field(ge=30000, le=32767)]
Pem = Annotated[str, AfterValidator(_pem)]  # a public PEM document
NonEmpty = AfterValidator(_no_blank)

# The checks themselves, for values validated outside a field (e.g. inside a PV source).
host = _host
node_path = _node_path
