#!/usr/bin/python3
"""Stand-in `k3s` binary for tests. NOT K3s: no containers, no Kubernetes API.

It behaves like K3s for what the node scripts touch: `k3s --version`, `k3s server`, `k3s agent`
and a small `k3s kubectl` (get/wait/drain/cordon/uncordon/label/taint/delete on nodes,
get --raw /readyz). See tests/standin/README.md for the contract and what is not simulated.
make_bundle.py bakes VERSION and DELAY in (the two lines below). Standard library only.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import sys
import threading
import time

VERSION = "v1.30.4+k3s1"
DELAY = 2.0

GO_VERSION = "go1.22.5"
DATA_DIR = "/var/lib/rancher/k3s"
CONFIG_FILE = "/etc/rancher/k3s/config.yaml"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
NODE_PASSWORD_FILE = "/etc/rancher/node/password"
EVENTS = "/var/log/aip/events.log"
PORT = 6443
HEARTBEAT = 2.0
GRACE = float(os.environ.get("AIP_STANDIN_NODE_GRACE", "10"))
API = "/v1-standin"
# the stand-in only ever connects to loopback and to the test-host network
ALLOWED_NETS = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.231.0.0/24")]
if os.environ.get("AIP_STANDIN_ALLOWED_NETS"):
    ALLOWED_NETS += [ipaddress.ip_network(n) for n in os.environ["AIP_STANDIN_ALLOWED_NETS"].split(",")]


# ---------------------------------------------------------------- small YAML subset


class YAMLError(Exception):
    pass


def _strip_comment(s):
    out, q = [], None
    for i, c in enumerate(s):
        if q:
            if c == q:
                q = None
        elif c in "'\"" and (i == 0 or s[i - 1] in " \t:-[{,"):
            q = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            break
        out.append(c)
    return "".join(out).rstrip()


def _scalar(s):
    s = s.strip()
    if s == "":
        return None
    if s[0] == "'" and s.endswith("'") and len(s) >= 2:
        return s[1:-1].replace("''", "'")
    if s[0] == '"' and s.endswith('"') and len(s) >= 2:
        return json.loads(s)
    if s[0] == "[" and s.endswith("]"):
        inner = s[1:-1].strip()
        return [_scalar(x) for x in _split_flow(inner)] if inner else []
    if s[0] == "{" and s.endswith("}"):
        inner = s[1:-1].strip()
        out = {}
        for item in _split_flow(inner) if inner else []:
            k, _, v = item.partition(":")
            out[_scalar(k)] = _scalar(v)
        return out
    low = s.lower()
    if low in ("null", "~"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    return s


def _split_flow(s):
    parts, cur, q, depth = [], [], None, 0
    for c in s:
        if q:
            cur.append(c)
            if c == q:
                q = None
            continue
        if c in "'\"":
            q = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def _key_value(content):
    """'key: value' -> (key, value) or None."""
    if content.startswith(("'", '"')):
        q = content[0]
        end = content.find(q, 1)
        if end > 0 and content[end + 1 : end + 2] == ":":
            return content[1:end], content[end + 2 :].strip()
        return None
    m = re.match(r"^([^\s:][^:]*?)\s*:(\s+(.*))?$", content)
    if not m:
        return None
    return m.group(1), (m.group(3) or "").strip()


def yaml_load(text):
    """A YAML subset: block mappings and sequences, plain/quoted/flow scalars, | and >
    block scalars, comments. Enough for config.yaml and kubeconfig files. JSON is accepted."""
    if text.lstrip().startswith("{"):
        return json.loads(text)
    lines = []
    raw = text.splitlines()
    i = 0
    while i < len(raw):
        line = raw[i].rstrip()
        i += 1
        if line.strip() in ("---", "...") or not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        content = _strip_comment(line.strip())
        if not content:
            continue
        # block scalars: keep the raw following lines
        if content.endswith(("|", ">", "|-", ">-", "|+", ">+")) and (":" in content or content.startswith("-")):
            block = []
            while i < len(raw) and (not raw[i].strip() or len(raw[i]) - len(raw[i].lstrip(" ")) > indent):
                block.append(raw[i])
                i += 1
            lines.append([indent, content, block])
            continue
        lines.append([indent, content, None])
    if not lines:
        return None
    value, pos = _parse_block(lines, 0, lines[0][0])
    if pos != len(lines):
        raise YAMLError(f"unexpected content at line: {lines[pos][1]!r}")
    return value


def _block_scalar(style, block):
    body = [b for b in block]
    ind = min((len(b) - len(b.lstrip(" ")) for b in body if b.strip()), default=0)
    body = [b[ind:] for b in body]
    while body and not body[-1].strip():
        body.pop()
    if style.startswith("|"):
        text = "\n".join(body)
    else:
        text = " ".join(b.strip() for b in body)
    return text if style.endswith("-") else text + "\n"


def _parse_block(lines, pos, indent):
    if lines[pos][1].startswith("- ") or lines[pos][1] == "-":
        return _parse_seq(lines, pos, indent)
    return _parse_map(lines, pos, indent)


def _value_after(lines, pos, indent, value, block, allow_same_indent_seq):
    """Value of a key/item whose inline part is VALUE; POS is the next line."""
    if block is not None:
        return _block_scalar(value, block), pos
    if value != "":
        # plain scalar continued on more-indented lines
        parts = [value]
        while (
            pos < len(lines)
            and lines[pos][0] > indent
            and _key_value(lines[pos][1]) is None
            and not lines[pos][1].startswith("- ")
        ):
            parts.append(lines[pos][1])
            pos += 1
        return _scalar(" ".join(parts)), pos
    if pos < len(lines):
        nind, ncontent = lines[pos][0], lines[pos][1]
        if nind > indent:
            return _parse_block(lines, pos, nind)
        if allow_same_indent_seq and nind == indent and (ncontent.startswith("- ") or ncontent == "-"):
            return _parse_seq(lines, pos, indent)
    return None, pos


def _parse_map(lines, pos, indent):
    out = {}
    while pos < len(lines):
        ind, content, block = lines[pos]
        if ind < indent:
            break
        if ind > indent:
            raise YAMLError(f"bad indentation at: {content!r}")
        if content.startswith("- ") or content == "-":
            break
        kv = _key_value(content)
        if kv is None:
            raise YAMLError(f"expected 'key: value', got: {content!r}")
        key, value = kv
        out[key], pos = _value_after(lines, pos + 1, indent, value, block, True)
    return out, pos


def _parse_seq(lines, pos, indent):
    out = []
    while pos < len(lines):
        ind, content, block = lines[pos]
        if ind != indent or not (content.startswith("- ") or content == "-"):
            break
        rest = content[2:].strip() if content != "-" else ""
        kv = _key_value(rest) if rest else None
        if kv is not None and not rest.startswith(("[", "{")):
            # a mapping item: "- key: v" then keys at indent+2
            sub_indent = indent + 2 + (len(content[2:]) - len(content[2:].lstrip(" ")))
            lines[pos] = [sub_indent, rest, block]
            item, pos = _parse_map(lines, pos, sub_indent)
            out.append(item)
            continue
        item, pos = _value_after(lines, pos + 1, indent, rest, block, False)
        out.append(item)
    return out, pos


def yaml_dump(obj, indent=0):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        if not obj:
            return pad + "{}\n"
        for k, v in obj.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{yaml_dump(v, indent + 2 if isinstance(v, dict) else indent)}")
            else:
                out.append(f"{pad}{k}: {_yaml_scalar(v)}\n")
    elif isinstance(obj, list):
        if not obj:
            return pad + "[]\n"
        for v in obj:
            if isinstance(v, dict) and v:
                sub = yaml_dump(v, indent + 2)
                out.append(pad + "- " + sub[indent + 2 :])
            elif isinstance(v, list) and v:
                out.append(pad + "-\n" + yaml_dump(v, indent + 2))
            else:
                out.append(f"{pad}- {_yaml_scalar(v)}\n")
    else:
        out.append(pad + _yaml_scalar(obj) + "\n")
    return "".join(out)


def _yaml_scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (dict, list)):
        return "{}" if isinstance(v, dict) else "[]"
    s = str(v)
    if (
        s == ""
        or re.search(r"[:#\[\]{},&*!|>'\"%@`]|^[-?\s]|\s$", s)
        or s.lower() in ("true", "false", "yes", "no", "on", "off", "null", "~")
        or re.match(r"^[0-9.+-]", s)
    ):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return s


# ---------------------------------------------------------------- logging, helpers


def log(level, msg):
    ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f'time="{ts}" level={level} msg={json.dumps(msg)}\n')
    sys.stderr.flush()


def event(name, target):
    try:
        os.makedirs(os.path.dirname(EVENTS), exist_ok=True)
        fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (f"{time.time():.3f} {name} {target}\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def fatal(msg, code=1):
    log("fatal", msg)
    unit = os.environ.get("AIP_STANDIN_UNIT")
    run = os.environ.get("AIP_STANDIN_RUN_DIR")
    if unit and run:
        try:
            with open(os.path.join(run, unit + ".failed"), "a") as f:
                f.write(msg + "\n")
        except OSError:
            pass
        event("failed", unit)
    sys.exit(code)


def write_file(path, data, mode):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".standin-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def hostname():
    return socket.gethostname().split(".")[0].lower()


def etc_hosts_lookup(name):
    try:
        with open("/etc/hosts") as f:
            for line in f:
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 2 and name in parts[1:]:
                    return parts[0]
    except OSError:
        pass
    return None


def resolve(host):
    """An IP for HOST from a literal or /etc/hosts only (the stand-in never asks DNS)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host == "localhost":
            return "127.0.0.1"
        found = etc_hosts_lookup(host)
        if not found:
            raise OSError(
                f"dial tcp: lookup {host}: no such host (the stand-in resolves names from /etc/hosts only)"
            ) from None
        ip = ipaddress.ip_address(found)
    if not any(ip in n for n in ALLOWED_NETS):
        raise OSError(f"stand-in refuses to connect to {ip} (only loopback and 10.231.0.0/24)")
    return str(ip)


def split_url(url):
    m = re.match(r"^(https?)://(\[[^\]]+\]|[^:/]+)(?::(\d+))?(/.*)?$", url or "")
    if not m:
        raise ValueError(f"invalid URL {url!r}")
    return m.group(2).strip("[]"), int(m.group(3) or (443 if m.group(1) == "https" else 80))


def api_call(method, url, path, body=None, headers=None, timeout=5.0):
    """(status, parsed-json-or-text) from the stand-in API at URL (plain HTTP even for https://)."""
    host, port = split_url(url)
    conn = http.client.HTTPConnection(resolve(host), port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        raw = r.read().decode("utf-8", "replace")
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
    finally:
        conn.close()


# ---------------------------------------------------------------- configuration

# flags that take a value when written as `--flag value` (others are booleans)
VALUE_FLAGS = {
    "config",
    "c",
    "data-dir",
    "d",
    "token",
    "t",
    "token-file",
    "agent-token",
    "agent-token-file",
    "server",
    "s",
    "node-name",
    "node-ip",
    "i",
    "node-external-ip",
    "node-label",
    "node-taint",
    "tls-san",
    "disable",
    "bind-address",
    "advertise-address",
    "advertise-port",
    "https-port",
    "write-kubeconfig-mode",
    "write-kubeconfig",
    "o",
    "write-kubeconfig-group",
    "flannel-iface",
    "flannel-backend",
    "cluster-cidr",
    "service-cidr",
    "cluster-dns",
    "cluster-domain",
    "kubelet-arg",
    "kube-apiserver-arg",
    "kube-controller-manager-arg",
    "kube-scheduler-arg",
    "kube-proxy-arg",
    "etcd-arg",
    "default-local-storage-path",
    "private-registry",
    "system-default-registry",
    "datastore-endpoint",
    "resolv-conf",
    "container-runtime-endpoint",
    "pause-image",
    "snapshotter",
    "egress-selector-mode",
    "etcd-snapshot-schedule-cron",
    "etcd-snapshot-retention",
    "etcd-snapshot-dir",
    "lb-server-port",
    "image-credential-provider-bin-dir",
    "image-credential-provider-config",
    "kube-cloud-controller-manager-arg",
    "log",
    "l",
    "alsologtostderr",
    "v",
    "vmodule",
    "secrets-encryption-provider",
    "node-internal-dns",
    "node-external-dns",
    "service-node-port-range",
    "flannel-conf",
    "flannel-cni-conf",
    "flannel-external-ip",
    "airgap-extra-registry",
}
LIST_KEYS = {
    "node-label",
    "node-taint",
    "tls-san",
    "disable",
    "kubelet-arg",
    "kube-apiserver-arg",
    "kube-controller-manager-arg",
    "kube-scheduler-arg",
    "kube-proxy-arg",
    "etcd-arg",
    "node-ip",
    "node-external-ip",
}
ALIASES = {"c": "config", "d": "data-dir", "t": "token", "s": "server", "i": "node-ip", "o": "write-kubeconfig"}


def parse_flags(args):
    """--flag=value / --flag value / --bool -> dict (list keys accumulate)."""
    out, rest = {}, []
    it = iter(args)
    for a in it:
        if not a.startswith("-") or a in ("-", "--"):
            rest.append(a)
            continue
        name, eq, value = a.lstrip("-").partition("=")
        name = ALIASES.get(name, name)
        if not eq:
            if name in VALUE_FLAGS or name in ALIASES.values():
                value = next(it, None)
                if value is None:
                    fatal(f"flag needs an argument: -{name}")
            else:
                value = True
        if name in LIST_KEYS:
            vals = value.split(",") if name in ("disable", "tls-san", "node-ip") and isinstance(value, str) else [value]
            out.setdefault(name, []).extend(vals)
        else:
            out[name] = value
    return out, rest


def load_config_files(path):
    cfg = {}
    files = []
    if os.path.exists(path):
        files.append(path)
    d = path + ".d"
    if os.path.isdir(d):
        files += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith((".yaml", ".yml"))]
    for f in files:
        try:
            with open(f) as fh:
                data = yaml_load(fh.read()) or {}
        except (OSError, YAMLError, ValueError) as e:
            fatal(f"failed to parse {f}: {e}")
        if not isinstance(data, dict):
            fatal(f"{f}: config file must be a mapping")
        for k, v in data.items():
            k = str(k)
            if k.endswith("+"):
                k = k[:-1]
                prev = cfg.get(k, [])
                cfg[k] = (prev if isinstance(prev, list) else [prev]) + (v if isinstance(v, list) else [v])
            else:
                cfg[k] = v
    return cfg


def as_list(v):
    if v is None:
        return []
    if isinstance(v, list):
        out = []
        for x in v:
            out += as_list(x)
        return out
    if isinstance(v, bool):
        return [str(v).lower()]
    return [str(v)]


def effective_config(args):
    """CLI flags > config file(s) > K3S_* environment (like K3s, where config entries become flags)."""
    flags, rest = parse_flags(args)
    cfg = load_config_files(flags.get("config") or os.environ.get("K3S_CONFIG_FILE") or CONFIG_FILE)
    env = {}
    for key, var in (
        ("token", "K3S_TOKEN"),
        ("token-file", "K3S_TOKEN_FILE"),
        ("server", "K3S_URL"),
        ("node-name", "K3S_NODE_NAME"),
        ("data-dir", "K3S_DATA_DIR"),
        ("agent-token", "K3S_AGENT_TOKEN"),
        ("write-kubeconfig-mode", "K3S_KUBECONFIG_MODE"),
    ):
        if os.environ.get(var):
            env[key] = os.environ[var]
    if os.environ.get("K3S_CLUSTER_INIT", "").lower() == "true":
        env["cluster-init"] = True
    known = VALUE_FLAGS | {
        "cluster-init",
        "docker",
        "debug",
        "selinux",
        "secrets-encryption",
        "rootless",
        "disable-network-policy",
        "disable-helm-controller",
        "disable-kube-proxy",
        "disable-cloud-controller",
        "disable-scheduler",
        "embedded-registry",
        "prefer-bundled-bin",
        "protect-kernel-defaults",
        "with-node-id",
        "etcd-expose-metrics",
        "etcd-disable-snapshots",
        "cluster-reset",
        "node-ip",
    }
    for k in cfg:
        if k not in known:
            log("warning", f"Unknown flag --{k} found in config.yaml, skipping")
    merged = dict(env)
    for src in (cfg, flags):
        for k, v in src.items():
            if k in LIST_KEYS:
                merged[k] = as_list(merged.get(k)) + as_list(v) if src is flags and k in cfg else as_list(v)
            else:
                merged[k] = v
    # flatten comma lists the way K3s does for these
    for k in ("disable", "tls-san", "node-ip"):
        if k in merged:
            merged[k] = [x.strip() for v in as_list(merged[k]) for x in v.split(",") if x.strip()]
    return merged, rest


def truthy(v):
    return v is True or (isinstance(v, str) and v.lower() in ("true", "1", "yes"))


def resolve_token(cfg, required_for):
    """(password, full token or None) from token / token-file / K10 format."""
    tok = cfg.get("token")
    if tok is not None and not isinstance(tok, str):
        tok = str(tok)
    if not tok and cfg.get("token-file"):
        try:
            with open(str(cfg["token-file"])) as f:
                tok = f.read().strip()
        except OSError as e:
            fatal("failed to read token file {}: {}".format(cfg["token-file"], e.strerror))
        if not tok:
            fatal("token file {} is empty".format(cfg["token-file"]))
    if not tok:
        if required_for:
            fatal(f"--token is required {required_for}")
        return None, None
    return parse_token(tok)


def parse_token(tok):
    m = re.match(r"^K10([0-9a-f]{64})::([^:]+):(.+)$", tok)
    if m:
        return m.group(3), m.group(1)
    return tok, None


def ca_hash(password):
    return hashlib.sha256(b"aip-standin-cluster-ca\0" + password.encode()).hexdigest()


def full_token(password, user="server"):
    return f"K10{ca_hash(password)}::{user}:{password}"


def node_password():
    try:
        with open(NODE_PASSWORD_FILE) as f:
            pw = f.read().strip()
            if pw:
                return pw
    except OSError:
        pass
    pw = secrets.token_hex(16)
    write_file(NODE_PASSWORD_FILE, pw + "\n", 0o600)
    return pw


def node_ip(cfg):
    ips = as_list(cfg.get("node-ip"))
    if ips:
        return ips[0]
    # the IPv4 address of eth0 (the test host's interface), else this host's /etc/hosts entry
    import fcntl
    import struct

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", b"eth0"))  # SIOCGIFADDR
            return socket.inet_ntoa(packed[20:24])
    except OSError:
        pass
    return etc_hosts_lookup(hostname()) or "127.0.0.1"


def notify_ready():
    p = os.environ.get("AIP_STANDIN_NOTIFY")
    if p:
        with open(p, "w") as f:
            f.write("READY=1\n")


class _HTTPServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET
    daemon_threads = True
    allow_reuse_address = True


def serve_http(host, port, handler, what):
    """Serve HANDLER on HOST:PORT in a daemon thread; a bind failure is fatal, like K3s'."""
    try:
        httpd = _HTTPServer((host, port), handler)
    except OSError as e:
        fatal(f"{what} {host or '0.0.0.0'}:{port}: bind: {e.strerror}")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def serve_kubelet_healthz(cfg):
    """The kubelet's /healthz ("ok"), on 127.0.0.1:10248 unless `kubelet-arg` says otherwise
    (healthz-port=0 switches it off, as on a real kubelet). Served once the node is up."""
    opts = dict(parse_label(a) for a in as_list(cfg.get("kubelet-arg")) if "=" in a)
    port = int(opts.get("healthz-port", "10248"))
    if port == 0:
        return None
    host = opts.get("healthz-bind-address", "127.0.0.1")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            code, body = (200, b"ok") if self.path == "/healthz" else (404, b"404 page not found\n")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return serve_http(host, port, Handler, "kubelet: listen tcp")


def sleep_startup(stop):
    """The configured start-up delay (AIP_STANDIN_DELAY overrides the baked-in one)."""
    d = float(os.environ.get("AIP_STANDIN_DELAY", DELAY))
    if d > 0:
        stop.wait(d)


def import_images(data_dir):
    d = os.path.join(data_dir, "agent", "images")
    if os.path.isdir(d):
        for f in sorted(os.listdir(d)):
            log("info", f"Importing images from {os.path.join(d, f)} (stand-in: not loaded)")


# ---------------------------------------------------------------- cluster state (first server)


def default_labels(name, role, etcd):
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "k3s",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "k3s",
    }
    if role == "server":
        labels["node-role.kubernetes.io/control-plane"] = "true"
        labels["node-role.kubernetes.io/master"] = "true"
        if etcd:
            labels["node-role.kubernetes.io/etcd"] = "true"
    return labels


def parse_label(s):
    k, _eq, v = s.partition("=")
    return k.strip(), v.strip()


def parse_taint(s):
    """key[=value]:Effect"""
    kv, _, effect = s.rpartition(":")
    if not kv:
        kv, effect = s, ""
    k, _, v = kv.partition("=")
    return {"key": k, "value": v, "effect": effect} if v else {"key": k, "effect": effect}


class Cluster:
    """Node objects, kept on the first server in DATA_DIR/server/standin-nodes.json."""

    def __init__(self, path, cfg, etcd):
        self.path = path
        self.lock = threading.RLock()
        self.etcd = etcd
        self.disabled = set(as_list(cfg.get("disable")))
        self.nodes = {}
        try:
            with open(path) as f:
                self.nodes = json.load(f).get("nodes", {})
        except (OSError, ValueError):
            pass

    def save(self):
        write_file(self.path, json.dumps({"nodes": self.nodes}, indent=1, sort_keys=True) + "\n", 0o600)

    def register(self, req):
        name = req["name"]
        pw_hash = hashlib.sha256(req.get("node_password", "").encode()).hexdigest()
        with self.lock:
            now = time.time()
            node = self.nodes.get(name)
            if node and not hmac.compare_digest(node.get("password_hash", ""), pw_hash):
                return 403, {
                    "error": "Node password rejected, duplicate hostname or contents of "
                    "'/etc/rancher/node/password' may not match server node-passwd entry, "
                    "try enabling a unique node name with the --with-node-id flag"
                }
            if node is None:
                labels = default_labels(name, req["role"], req["role"] == "server" and self.etcd)
                for s in req.get("labels", []):
                    k, v = parse_label(s)
                    labels[k] = v
                node = {
                    "name": name,
                    "role": req["role"],
                    "labels": labels,
                    "taints": [parse_taint(t) for t in req.get("taints", [])],
                    "annotations": {},
                    "unschedulable": False,
                    "drained": False,
                    "created": now,
                    "password_hash": pw_hash,
                }
                self.nodes[name] = node
                event("register", name)
            # like the kubelet, labels/taints from flags apply at registration only
            node["address"] = req.get("address", "")
            node["version"] = req.get("version", VERSION)
            node["heartbeat"] = now
            self.save()
            return 200, {"node": render_node(node)}

    def heartbeat(self, name, password):
        pw_hash = hashlib.sha256(password.encode()).hexdigest()
        with self.lock:
            node = self.nodes.get(name)
            if not node:
                return 404, {"error": f'nodes "{name}" not found'}
            if not hmac.compare_digest(node.get("password_hash", ""), pw_hash):
                return 403, {"error": "Node password rejected"}
            node["heartbeat"] = time.time()
            self.save()
            return 200, {}

    def daemonset_pods(self, name):
        if "servicelb" in self.disabled or "traefik" in self.disabled:
            return []
        return [f"kube-system/svclb-traefik-{hashlib.sha256(name.encode()).hexdigest()[:5]}"]

    def emptydir_pods(self, name):
        if "metrics-server" in self.disabled:
            return []
        first = min(self.nodes.values(), key=lambda n: n.get("created", 0), default=None)
        if first and first["name"] == name:
            return [f"kube-system/metrics-server-557ff575fb-{hashlib.sha256(name.encode()).hexdigest()[:5]}"]
        return []

    def op(self, name, action, body):
        with self.lock:
            node = self.nodes.get(name)
            if node is None:
                return 404, {"error": f'nodes "{name}" not found'}
            out = []
            if action == "delete":
                del self.nodes[name]
                event("delete-node", name)
                self.save()
                return 200, {"lines": [f'node "{name}" deleted']}
            if action in ("cordon", "drain"):
                if node["unschedulable"]:
                    out.append(f"node/{name} already cordoned")
                else:
                    node["unschedulable"] = True
                    out.append(f"node/{name} cordoned")
                if action == "cordon":
                    event("cordon", name)
            if action == "drain":
                ds = self.daemonset_pods(name)
                ed = self.emptydir_pods(name)
                errs = []
                if ds and not body.get("ignore_daemonsets"):
                    errs.append(
                        "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {}".format(
                            ", ".join(ds)
                        )
                    )
                if ed and not body.get("delete_emptydir_data"):
                    errs.append(
                        "cannot delete Pods with local storage (use --delete-emptydir-data to override): {}".format(
                            ", ".join(ed)
                        )
                    )
                if errs:
                    self.save()
                    return 409, {"lines": out, "error": "; ".join(errs), "node": name}
                if ds:
                    out.append("Warning: ignoring DaemonSet-managed Pods: {}".format(", ".join(ds)))
                for p in ed:
                    out.append(f"evicting pod {p}")
                for p in ed:
                    out.append("pod/{} evicted".format(p.split("/", 1)[1]))
                node["drained"] = True
                node["annotations"]["standin.aip/drained"] = "true"
                out.append(f"node/{name} drained")
                event("drain", name)
            if action == "uncordon":
                if node["unschedulable"]:
                    node["unschedulable"] = False
                    node["drained"] = False
                    node["annotations"].pop("standin.aip/drained", None)
                    out.append(f"node/{name} uncordoned")
                else:
                    out.append(f"node/{name} already uncordoned")
                event("uncordon", name)
            if action == "label":
                changed = False
                for item in body.get("labels", []):
                    if item.endswith("-") and "=" not in item:
                        if node["labels"].pop(item[:-1], None) is not None:
                            changed = True
                        continue
                    k, v = parse_label(item)
                    if k in node["labels"] and node["labels"][k] != v and not body.get("overwrite"):
                        return 409, {
                            "error": "'{}' already has a value ({}), and --overwrite is false".format(
                                k, node["labels"][k]
                            )
                        }
                    if node["labels"].get(k) != v:
                        node["labels"][k] = v
                        changed = True
                unl = all(i.endswith("-") and "=" not in i for i in body.get("labels", []))
                out.append("node/{} {}".format(name, ("unlabeled" if unl else "labeled") if changed else "not labeled"))
                event("label", name)
            if action == "taint":
                for item in body.get("taints", []):
                    if item.endswith("-"):
                        t = parse_taint(item[:-1]) if ":" in item else {"key": item[:-1]}
                        before = len(node["taints"])
                        node["taints"] = [
                            x
                            for x in node["taints"]
                            if not (x["key"] == t["key"] and (not t.get("effect") or x["effect"] == t["effect"]))
                        ]
                        if len(node["taints"]) == before:
                            return 404, {"error": f"taint {item[:-1]!r} not found"}
                        continue
                    t = parse_taint(item)
                    same = [x for x in node["taints"] if x["key"] == t["key"] and x["effect"] == t["effect"]]
                    if same and not body.get("overwrite"):
                        return 409, {
                            "error": "node {} already has {} taint(s) with same effect(s) and --overwrite is false".format(
                                name, t["key"]
                            )
                        }
                    node["taints"] = [x for x in node["taints"] if x not in same] + [t]
                out.append(
                    "node/{} {}".format(
                        name, "untainted" if all(i.endswith("-") for i in body.get("taints", [])) else "tainted"
                    )
                )
                event("taint", name)
            self.save()
            return 200, {"lines": out}

    def list(self):
        with self.lock:
            return [render_node(n) for n in sorted(self.nodes.values(), key=lambda n: n["name"])]

    def get(self, name):
        with self.lock:
            n = self.nodes.get(name)
            return render_node(n) if n else None


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def render_node(n):
    now = time.time()
    ready = now - n.get("heartbeat", 0) <= GRACE
    taints = [dict(t) for t in n.get("taints", [])]
    if n.get("unschedulable"):
        taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": iso(now)})
    if not ready:
        taints.append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": iso(now)})
    spec = {"podCIDR": "10.42.0.0/24", "podCIDRs": ["10.42.0.0/24"], "providerID": "k3s://{}".format(n["name"])}
    if taints:
        spec["taints"] = taints
    if n.get("unschedulable"):
        spec["unschedulable"] = True
    ann = {"k3s.io/node-args": '["{}"]'.format(n["role"]), "aip.standin/role": n["role"]}
    ann.update(n.get("annotations", {}))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n["name"],
            "labels": dict(sorted(n["labels"].items())),
            "annotations": ann,
            "creationTimestamp": iso(n.get("created", now)),
            "uid": hashlib.sha256(("{}/{}".format(n["name"], n.get("created"))).encode()).hexdigest()[:32],
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"address": n.get("address", ""), "type": "InternalIP"},
                {"address": n["name"], "type": "Hostname"},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "Unknown" if n.get("heartbeat") else "False",
                    "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                    "message": "kubelet is posting ready status" if ready else "Kubelet stopped posting node status.",
                    "lastHeartbeatTime": iso(n.get("heartbeat", 0)),
                }
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": "containerd://1.7.20-k3s1",
                "kernelVersion": os.uname().release,
                "kubeProxyVersion": n.get("version", VERSION),
                "kubeletVersion": n.get("version", VERSION),
                "operatingSystem": "linux",
                "osImage": "Debian GNU/Linux 12 (bookworm) [stand-in]",
            },
        },
    }


# ---------------------------------------------------------------- API server


class Server:
    def __init__(self, cfg):
        self.cfg = cfg
        self.data_dir = str(cfg.get("data-dir") or DATA_DIR)
        self.name = str(cfg.get("node-name") or hostname()).lower()
        self.upstream = cfg.get("server") or None
        self.ready = False
        self.etcd = truthy(cfg.get("cluster-init")) or bool(self.upstream)
        self.password, given_hash = resolve_token(cfg, "to join a server" if self.upstream else None)
        self.given_hash = given_hash
        tokfile = os.path.join(self.data_dir, "server", "token")
        if not self.password:
            try:
                with open(tokfile) as f:
                    self.password = parse_token(f.read().strip())[0]
            except OSError:
                self.password = secrets.token_hex(24)
                log("info", "no token configured: generated a random cluster token")
        if given_hash and not self.upstream and given_hash != ca_hash(self.password):
            fatal("token CA hash does not match the cluster CA certificate hash")
        self.cluster = (
            None
            if self.upstream
            else Cluster(os.path.join(self.data_dir, "server", "standin-nodes.json"), cfg, self.etcd)
        )
        self.admin_key = None

    # -- auth
    def token_ok(self, token):
        pw, h = parse_token(token or "")
        if h and h != ca_hash(self.password):
            return False
        return hmac.compare_digest(pw.encode(), self.password.encode())

    def authorized(self, headers):
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer token:"):
            return self.token_ok(auth[len("Bearer token:") :])
        if auth.startswith("Bearer admin:") and self.admin_key:
            want = hashlib.sha256(self.admin_key.encode()).hexdigest()
            return hmac.compare_digest(auth[len("Bearer admin:") :].encode(), want.encode())
        return False

    def upstream_call(self, method, path, body=None):
        return api_call(
            method, self.upstream, path, body, headers={"Authorization": "Bearer token:" + self.password}, timeout=10
        )

    def handle(self, method, path, headers, body):
        if path in ("/readyz", "/healthz", "/livez"):
            if self.ready:
                return 200, "ok"
            return 500, "[+]ping ok\n[-]poststarthook/standin-startup failed: not finished\nreadyz check failed"
        if path == "/version":
            return 200, {"gitVersion": VERSION, "platform": "linux/amd64", "standin": True}
        if path in (API + "/register", API + "/heartbeat"):
            if not self.ready:
                return 503, {"error": "server is not ready"}
            if not self.token_ok(body.get("token", "")):
                return 401, {"error": "token rejected: the token does not match this cluster"}
            if self.cluster is None:
                return self.upstream_call(method, path, body)
            if path.endswith("/register"):
                if body.get("role") == "server" and not self.etcd:
                    return 400, {
                        "error": "this server uses the embedded SQLite datastore, not etcd: start the "
                        "first server with --cluster-init to join more servers"
                    }
                return self.cluster.register(body)
            return self.cluster.heartbeat(body.get("name", ""), body.get("node_password", ""))
        if path.startswith(API + "/nodes"):
            if not self.authorized(headers):
                return 401, {"error": "Unauthorized"}
            if not self.ready:
                return 503, {"error": "server is not ready"}
            if self.cluster is None:
                return self.upstream_call(method, path, body if method != "GET" else None)
            rest = path[len(API + "/nodes") :].strip("/")
            if method == "GET" and not rest:
                return 200, {"items": self.cluster.list()}
            parts = rest.split("/")
            if method == "GET" and len(parts) == 1:
                n = self.cluster.get(parts[0])
                return (200, n) if n else (404, {"error": f'nodes "{parts[0]}" not found'})
            if method == "DELETE" and len(parts) == 1:
                return self.cluster.op(parts[0], "delete", body)
            if method == "POST" and len(parts) == 2:
                return self.cluster.op(parts[0], parts[1], body)
        return 404, {"error": "not found"}

    def serve(self, bind, port):
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _do(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                try:
                    code, out = srv.handle(method, self.path.split("?")[0], self.headers, body)
                except OSError as e:
                    code, out = 503, {"error": f"upstream unavailable: {e}"}
                data = (out if isinstance(out, str) else json.dumps(out)).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if isinstance(out, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._do("GET")

            def do_POST(self):
                self._do("POST")

            def do_DELETE(self):
                self._do("DELETE")

        return serve_http(bind, port, Handler, "starting kubernetes: preparing server: listen tcp")


def kubeconfig_text(server_url, admin_key):
    def fake_pem(kind, body):
        b = base64.b64encode(body.encode()).decode()
        lines = [b[i : i + 64] for i in range(0, len(b), 64)]
        return base64.b64encode(
            ("-----BEGIN {}-----\n{}\n-----END {}-----\n".format(kind, "\n".join(lines), kind)).encode()
        ).decode()

    ca = fake_pem("CERTIFICATE", "aip stand-in cluster CA (not a real certificate)")
    cert = fake_pem("CERTIFICATE", "aip stand-in admin client certificate (not real)")
    key = fake_pem("EC PRIVATE KEY", admin_key)
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: {server_url}\n"
        "  name: default\n"
        "contexts:\n"
        "- context:\n"
        "    cluster: default\n"
        "    user: default\n"
        "  name: default\n"
        "current-context: default\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        "- name: default\n"
        "  user:\n"
        f"    client-certificate-data: {cert}\n"
        f"    client-key-data: {key}\n"
    )


def admin_key_from_kubeconfig(kc):
    """The admin secret inside a stand-in kubeconfig's client-key-data."""
    users = kc.get("users") or []
    if not users:
        return None
    data = ((users[0] or {}).get("user") or {}).get("client-key-data")
    if not data:
        return None
    pem = base64.b64decode(data).decode("utf-8", "replace")
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    try:
        return base64.b64decode(body).decode()
    except ValueError:
        return None


def cmd_server(args):
    cfg, _ = effective_config(args)
    srv = Server(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log("info", f"Starting k3s {VERSION} (stand-in)")
    data_dir = srv.data_dir
    bind = str(cfg.get("bind-address") or "")
    port = int(cfg.get("https-port") or PORT)
    if cfg.get("flannel-iface"):
        log("info", "flannel-iface={} (stand-in: no flannel)".format(cfg["flannel-iface"]))
    httpd = srv.serve(bind, port)
    import_images(data_dir)
    sleep_startup(stop)
    if stop.is_set():
        return 0
    address = str(cfg.get("advertise-address") or node_ip(cfg))
    pw = node_password()
    reg = {
        "name": srv.name,
        "role": "server",
        "token": full_token(srv.password) if not srv.given_hash else f"K10{srv.given_hash}::server:{srv.password}",
        "node_password": pw,
        "address": address,
        "labels": as_list(cfg.get("node-label")),
        "taints": as_list(cfg.get("node-taint")),
        "version": VERSION,
    }
    if srv.upstream:
        register_loop(srv.upstream, reg, stop)
        if stop.is_set():
            return 0
        # a joining server's kubectl goes through its own API (forwarded to the first server)
    # token files like K3s: server/token (full K10 form), node-token -> token, agent-token
    tok = full_token(srv.password)
    write_file(os.path.join(data_dir, "server", "token"), tok + "\n", 0o600)
    write_file(os.path.join(data_dir, "server", "agent-token"), tok + "\n", 0o600)
    nt = os.path.join(data_dir, "server", "node-token")
    if not os.path.islink(nt):
        try:
            os.unlink(nt)
        except FileNotFoundError:
            pass
        os.symlink(os.path.join(data_dir, "server", "token"), nt)
    keyfile = os.path.join(data_dir, "server", "standin-admin.key")
    try:
        with open(keyfile) as f:
            srv.admin_key = f.read().strip()
    except OSError:
        srv.admin_key = secrets.token_hex(32)
        write_file(keyfile, srv.admin_key + "\n", 0o600)
    mode = int(str(cfg.get("write-kubeconfig-mode") or "0600"), 8)
    kc_path = str(cfg.get("write-kubeconfig") or KUBECONFIG)
    local = "127.0.0.1" if bind in ("", "0.0.0.0") else bind
    write_file(kc_path, kubeconfig_text(f"https://{local}:{port}", srv.admin_key), mode)
    log("info", f"Wrote kubeconfig {kc_path}")
    srv.ready = True
    if srv.cluster is not None:
        srv.cluster.register(reg)
    log("info", f"k3s is up and running (stand-in); node {srv.name} registered")
    event("ready", os.environ.get("AIP_STANDIN_UNIT", "k3s"))
    serve_kubelet_healthz(cfg)  # after the event: whoever sees "ok" finds "ready" logged
    notify_ready()
    while not stop.wait(HEARTBEAT):
        try:
            if srv.cluster is not None:
                srv.cluster.heartbeat(srv.name, pw)
            else:
                heartbeat(srv.upstream, reg)
        except OSError as e:
            log("error", f"heartbeat failed: {e}")
    log("info", "Shutting down (stand-in)")
    httpd.shutdown()
    return 0


def register_loop(url, reg, stop):
    """Register with the server at URL; retry while it is unreachable, exit on auth errors."""
    last_log = 0.0
    while not stop.is_set():
        try:
            code, out = api_call("POST", url, API + "/register", reg, timeout=5)
        except OSError as e:
            code, out = None, str(e)
        if code == 200:
            log("info", "Registered node {} with {}".format(reg["name"], url))
            return True
        if code in (400, 401, 403):
            msg = out.get("error") if isinstance(out, dict) else out
            fatal(f"Failed to join {url}: {code} {msg}")
        if time.time() - last_log > 5:
            log(
                "info",
                "Waiting to retrieve agent configuration; server is not ready: %s"
                % (out.get("error") if isinstance(out, dict) else out),
            )
            last_log = time.time()
        stop.wait(1.0)
    return False


def heartbeat(url, reg):
    code, out = api_call(
        "POST",
        url,
        API + "/heartbeat",
        {"name": reg["name"], "token": reg["token"], "node_password": reg["node_password"]},
        timeout=5,
    )
    if code == 404:
        log("error", "node {} not found on the server (deleted?): not re-registering until restart".format(reg["name"]))
    elif code != 200:
        log("error", f"heartbeat: {code} {out}")


def cmd_agent(args):
    cfg, _ = effective_config(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log("info", f"Starting k3s agent {VERSION} (stand-in)")
    url = cfg.get("server")
    if not url:
        fatal("--server is required")
    try:
        split_url(str(url))
    except ValueError as e:
        fatal(str(e))
    password, given_hash = resolve_token(cfg, "")
    token = f"K10{given_hash}::server:{password}" if given_hash else password
    data_dir = str(cfg.get("data-dir") or DATA_DIR)
    name = str(cfg.get("node-name") or hostname()).lower()
    import_images(data_dir)
    sleep_startup(stop)
    if stop.is_set():
        return 0
    reg = {
        "name": name,
        "role": "agent",
        "token": token,
        "node_password": node_password(),
        "address": node_ip(cfg),
        "labels": as_list(cfg.get("node-label")),
        "taints": as_list(cfg.get("node-taint")),
        "version": VERSION,
    }
    if not register_loop(str(url), reg, stop):
        return 0
    write_file(
        os.path.join(data_dir, "agent", "standin-registered"),
        json.dumps({"name": name, "server": url, "time": time.time()}) + "\n",
        0o600,
    )
    event("ready", os.environ.get("AIP_STANDIN_UNIT", "k3s-agent"))
    serve_kubelet_healthz(cfg)  # after the event: whoever sees "ok" finds "ready" logged
    notify_ready()
    while not stop.wait(HEARTBEAT):
        try:
            heartbeat(str(url), reg)
        except OSError as e:
            log("error", f"heartbeat failed: {e}")
    log("info", "Shutting down (stand-in)")
    return 0


# ---------------------------------------------------------------- kubectl


class KubectlError(Exception):
    pass


def kc_load(explicit):
    path = explicit or os.environ.get("KUBECONFIG")
    if not path:
        if os.path.exists(KUBECONFIG):
            path = KUBECONFIG
        elif os.path.exists(os.path.expanduser("~/.kube/config")):
            path = os.path.expanduser("~/.kube/config")
    if not path:
        raise KubectlError(
            "The connection to the server localhost:8080 was refused - did you specify the right host or port?"
        )
    try:
        with open(path) as f:
            kc = yaml_load(f.read()) or {}
    except PermissionError:
        if path == KUBECONFIG:
            log(
                "warning",
                f"Unable to read {path}, please start server with --write-kubeconfig-mode or "
                "--write-kubeconfig-group to modify kube config permissions",
            )
        raise KubectlError(f'error: error loading config file "{path}": open {path}: permission denied') from None
    except FileNotFoundError:
        raise KubectlError(f"error: stat {path}: no such file or directory") from None
    clusters = kc.get("clusters") or []
    if not clusters:
        raise KubectlError(
            "The connection to the server localhost:8080 was refused - did you specify the right host or port?"
        )
    server = ((clusters[0] or {}).get("cluster") or {}).get("server")
    return server, admin_key_from_kubeconfig(kc)


class Kube:
    def __init__(self, kubeconfig):
        self.server, key = kc_load(kubeconfig)
        self.auth = {"Authorization": "Bearer admin:" + hashlib.sha256((key or "").encode()).hexdigest()}

    def call(self, method, path, body=None):
        try:
            return api_call(method, self.server, path, body, headers=self.auth, timeout=15)
        except (OSError, ValueError):
            host = self.server.split("://", 1)[-1].rstrip("/")
            raise KubectlError(
                f"The connection to the server {host} was refused - did you specify the right host or port?"
            ) from None

    def nodes(self):
        code, out = self.call("GET", API + "/nodes")
        self.check(code, out)
        return out["items"]

    def node(self, name):
        code, out = self.call("GET", API + "/nodes/" + name)
        if code == 404:
            raise KubectlError(f'Error from server (NotFound): nodes "{name}" not found')
        self.check(code, out)
        return out

    @staticmethod
    def check(code, out):
        if code == 401:
            raise KubectlError("error: You must be logged in to the server (Unauthorized)")
        if code == 503:
            raise KubectlError(
                "Error from server (ServiceUnavailable): the server is currently unable to handle the request"
            )
        if code != 200:
            msg = out.get("error") if isinstance(out, dict) else out
            raise KubectlError(f"Error from server: {msg}")


def age(ts_iso):
    try:
        import calendar

        t = calendar.timegm(time.strptime(ts_iso, "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return "<unknown>"
    s = max(0, int(time.time() - t))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def node_status(n):
    ready = next(c for c in n["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
    s = "Ready" if ready else "NotReady"
    if n["spec"].get("unschedulable"):
        s += ",SchedulingDisabled"
    return s


def node_roles(n):
    roles = sorted(k.split("/", 1)[1] for k in n["metadata"]["labels"] if k.startswith("node-role.kubernetes.io/"))
    return ",".join(roles) or "<none>"


def table(rows, headers, no_headers):
    data = ([headers] if not no_headers else []) + rows
    if not data:
        return ""
    widths = [max(len(r[i]) for r in data) for i in range(len(headers))]
    out = []
    for r in data:
        out.append("   ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(out) + "\n"


# --- JSONPath subset (kubectl -o jsonpath)


def _jp_tokens(expr):
    toks, i = [], 0
    expr = expr.strip()
    if expr.startswith("$"):
        expr = expr[1:]
    while i < len(expr):
        c = expr[i]
        if c == ".":
            if expr[i : i + 2] == "..":
                raise KubectlError("error: recursive descent is not supported by the stand-in")
            j = i + 1
            while j < len(expr) and expr[j] not in ".[":
                j += 1
            if j > i + 1:
                toks.append(("key", expr[i + 1 : j]))
            i = j
        elif c == "[":
            depth, j = 0, i
            while j < len(expr):
                if expr[j] == "[":
                    depth += 1
                elif expr[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            inner = expr[i + 1 : j]
            i = j + 1
            if inner == "*":
                toks.append(("all", None))
            elif inner.startswith("?("):
                m = re.match(r"^\?\(@\.([\w.\-/]+)\s*(==|!=)\s*(?:\"([^\"]*)\"|'([^']*)')\)$", inner)
                if not m:
                    raise KubectlError(f"error: unsupported filter {inner}")
                toks.append(("filter", (m.group(1), m.group(2), m.group(3) if m.group(3) is not None else m.group(4))))
            elif re.match(r"^-?\d+$", inner):
                toks.append(("index", int(inner)))
            elif inner[:1] in "'\"":
                toks.append(("key", inner[1:-1]))
            else:
                raise KubectlError(f"error: unsupported JSONPath [{inner}]")
        else:
            j = i
            while j < len(expr) and expr[j] not in ".[":
                j += 1
            toks.append(("key", expr[i:j]))
            i = j
    return toks


def jp_eval(expr, root):
    vals = [root]
    for kind, arg in _jp_tokens(expr):
        nxt = []
        for v in vals:
            if kind == "key":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "all":
                if isinstance(v, list):
                    nxt += v
                elif isinstance(v, dict):
                    nxt += list(v.values())
            elif kind == "index":
                if isinstance(v, list) and -len(v) <= arg < len(v):
                    nxt.append(v[arg])
            elif kind == "filter":
                path, op, want = arg
                for item in v if isinstance(v, list) else [v]:
                    got = item
                    for p in path.split("."):
                        got = got.get(p) if isinstance(got, dict) else None
                    if (str(got) == want) == (op == "=="):
                        if got is not None or op == "!=":
                            nxt.append(item)
        vals = nxt
    return vals


def _jp_str(v):
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(",", ":"))


def jsonpath(template, obj):
    """kubectl's template: literal text with {expr}, {range expr}...{end}, {"literal"}."""
    parts = re.split(r"(\{[^{}]*\})", template)
    out, _ = _jp_render(parts, 0, obj)
    return out


def _jp_render(parts, i, cur, in_range=False):
    out = []
    while i < len(parts):
        p = parts[i]
        if not (p.startswith("{") and p.endswith("}")):
            out.append(p)
            i += 1
            continue
        e = p[1:-1].strip()
        if e == "end":
            if in_range:
                return "".join(out), i + 1
            raise KubectlError("error: not in range, nothing to end")
        if e.startswith("range "):
            items = jp_eval(e[6:].strip().lstrip("@"), cur)
            body_end = None
            for item in items:
                s, body_end = _jp_render(parts, i + 1, item, True)
                out.append(s)
            if body_end is None:
                _, body_end = _jp_render(parts, i + 1, {}, True)
            i = body_end
            continue
        if e.startswith(('"', "'")):
            out.append(json.loads(e) if e.startswith('"') else e[1:-1])
            i += 1
            continue
        vals = jp_eval(e.lstrip("@"), cur)
        out.append(" ".join(_jp_str(v) for v in vals))
        i += 1
    return "".join(out), i


# Flags taking a value that the stand-in accepts and ignores (`--flag value` or `--flag=value`).
IGNORED_VALUE_FLAGS = (
    "--namespace",
    "--context",
    "--request-timeout",
    "--grace-period",
    "--pod-selector",
    "--chunk-size",
    "--cluster",
    "--user",
    "--skip-wait-for-delete-timeout",
)


def kubectl(argv):
    try:
        return _kubectl(argv)
    except KubectlError as e:
        sys.stderr.write(str(e) + "\n")
        return 1


def _kubectl(argv):
    kubeconfig = None
    opts = {
        "output": None,
        "no_headers": False,
        "selector": None,
        "overwrite": False,
        "show_labels": False,
        "ignore_not_found": False,
        "ignore_daemonsets": False,
        "delete_emptydir_data": False,
        "force": False,
        "timeout": None,
        "for": None,
        "all": False,
        "raw": None,
    }
    args = []
    it = iter(argv)
    for a in it:
        name, eq, val = a.partition("=")
        if a in ("-o", "--output"):
            opts["output"] = next(it, "")
        elif a.startswith("-o") and not a.startswith("--") and len(a) > 2:
            opts["output"] = a[2:].lstrip("=")
        elif name == "--output":
            opts["output"] = val
        elif name == "--kubeconfig":
            kubeconfig = val if eq else next(it, "")
        elif name in ("--raw",):
            opts["raw"] = val if eq else next(it, "")
        elif a in ("-l", "--selector") or name == "--selector":
            opts["selector"] = val if eq else next(it, "")
        elif name == "--timeout":
            opts["timeout"] = val if eq else next(it, "")
        elif name == "--for":
            opts["for"] = val if eq else next(it, "")
        elif a == "-n" or name in IGNORED_VALUE_FLAGS:
            if not eq:
                next(it, None)  # `--flag value`: the value is the next word
        elif a.startswith("-n") and len(a) > 2:  # -nNAMESPACE
            pass
        elif name in (
            "--no-headers",
            "--overwrite",
            "--show-labels",
            "--ignore-not-found",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--delete-local-data",
            "--force",
            "--all",
            "--wait",
            "--disable-eviction",
            "--dry-run",
            "--all-namespaces",
        ):
            on = (val.lower() != "false") if eq else True
            key = {
                "--delete-local-data": "delete_emptydir_data",
                "--all-namespaces": None,
                "--wait": None,
                "--disable-eviction": None,
                "--dry-run": None,
            }.get(name, name[2:].replace("-", "_"))
            if key:
                opts[key] = on
        elif a == "-A":
            pass
        elif a.startswith("-") and a != "-":
            raise KubectlError("error: unknown flag: {} (stand-in kubectl)".format(a.split("=")[0]))
        else:
            args.append(a)
    if not args:
        sys.stdout.write(
            f"kubectl (stand-in k3s {VERSION}): get, wait, drain, cordon, uncordon, label, taint, delete, version\n"
        )
        return 0
    verb = args[0]
    if verb == "version":
        sys.stdout.write(f"Client Version: {VERSION}\nKustomize Version: v5.0.4-0.20230601165947-6ce0bf390ce3\n")
        try:
            kube = Kube(kubeconfig)
            code, out = kube.call("GET", "/version")
            if code == 200:
                sys.stdout.write("Server Version: {}\n".format(out["gitVersion"]))
        except KubectlError as e:
            sys.stderr.write(str(e) + "\n")
            return 1
        return 0
    kube = Kube(kubeconfig)
    if verb == "get" and opts["raw"] is not None:
        code, out = kube.call("GET", opts["raw"])
        if code == 200:
            sys.stdout.write(out if isinstance(out, str) else json.dumps(out))
            return 0
        if code == 401:
            raise KubectlError("error: You must be logged in to the server (Unauthorized)")
        raise KubectlError(
            'Error from server (InternalError): an error on the server ("{}") has prevented the '
            "request from succeeding".format((out if isinstance(out, str) else json.dumps(out)).replace("\n", "\\n"))
        )
    resource, names = resource_args(args[1:])
    if verb == "get":
        return kubectl_get(kube, resource, names, opts)
    if verb == "wait":
        return kubectl_wait(kube, resource, names, opts)
    if verb in ("drain", "cordon", "uncordon"):
        if resource not in ("nodes", None) or not names:
            raise KubectlError(f"error: USAGE: {verb} NODE [flags]")
        rc = 0
        for n in names:
            code, out = kube.call(
                "POST",
                f"{API}/nodes/{n}/{verb}",
                {
                    "ignore_daemonsets": opts["ignore_daemonsets"],
                    "delete_emptydir_data": opts["delete_emptydir_data"],
                    "force": opts["force"],
                },
            )
            if code == 404:
                raise KubectlError(f'Error from server (NotFound): nodes "{n}" not found')
            for line in out.get("lines", []) if isinstance(out, dict) else []:
                sys.stdout.write(line + "\n")
            if code == 409:
                err = out["error"]
                sys.stderr.write(
                    f'error: unable to drain node "{n}" due to error: {err}, continuing command...\n'
                    f"There are pending nodes to be drained:\n {n}\n{err}\n"
                )
                rc = 1
                continue
            Kube.check(code, out)
        return rc
    if verb in ("label", "taint"):
        if resource not in ("nodes",) or not names:
            raise KubectlError(f"error: the stand-in supports `{verb} node NAME ...` only")
        node, items = names[0], names[1:]
        if not items:
            raise KubectlError(f"error: at least one {verb} update is required")
        code, out = kube.call(
            "POST",
            f"{API}/nodes/{node}/{verb}",
            {"labels" if verb == "label" else "taints": items, "overwrite": opts["overwrite"]},
        )
        if code == 404:
            raise KubectlError(f'Error from server (NotFound): nodes "{node}" not found')
        if code == 409:
            raise KubectlError("error: {}".format(out["error"]))
        Kube.check(code, out)
        for line in out.get("lines", []):
            sys.stdout.write(line + "\n")
        return 0
    if verb == "delete":
        if resource != "nodes" or not names:
            raise KubectlError("error: the stand-in supports `delete node NAME...` only")
        rc = 0
        for n in names:
            code, out = kube.call("DELETE", f"{API}/nodes/{n}", {})
            if code == 404:
                if opts["ignore_not_found"]:
                    continue
                sys.stderr.write(f'Error from server (NotFound): nodes "{n}" not found\n')
                rc = 1
                continue
            Kube.check(code, out)
            for line in out.get("lines", []):
                sys.stdout.write(line + "\n")
        return rc
    raise KubectlError(f'error: unknown command "{verb}" for "kubectl" (stand-in)')


def resource_args(rest):
    """['node', 'a'] / ['node/a'] / ['nodes'] -> ('nodes', [names])"""
    if not rest:
        return None, []
    kinds = {
        "node": "nodes",
        "nodes": "nodes",
        "no": "nodes",
        "pod": "pods",
        "pods": "pods",
        "po": "pods",
        "namespace": "namespaces",
        "namespaces": "namespaces",
        "ns": "namespaces",
    }
    first = rest[0]
    if "/" in first:
        names = []
        res = None
        for r in rest:
            k, _, n = r.partition("/")
            if k in kinds:
                res = kinds[k]
                names.append(n)
            else:
                names.append(r)
        return res, names
    if first in kinds:
        return kinds[first], rest[1:]
    return "nodes", rest  # drain/cordon NAME


def select(nodes, selector):
    if not selector:
        return nodes
    out = []
    for n in nodes:
        labels = n["metadata"]["labels"]
        ok = True
        for term in selector.split(","):
            term = term.strip()
            if "!=" in term:
                k, v = term.split("!=", 1)
                ok &= labels.get(k) != v
            elif "=" in term:
                k, v = term.split("==" if "==" in term else "=", 1)
                ok &= labels.get(k) == v
            elif term.startswith("!"):
                ok &= term[1:] not in labels
            else:
                ok &= term in labels
        if ok:
            out.append(n)
    return out


def kubectl_get(kube, resource, names, opts):
    if resource == "pods":
        sys.stderr.write("No resources found in default namespace.\n")
        return 0
    if resource == "namespaces":
        rows = [[n, "Active", "1d"] for n in ("default", "kube-node-lease", "kube-public", "kube-system")]
        sys.stdout.write(table(rows, ["NAME", "STATUS", "AGE"], opts["no_headers"]))
        return 0
    if resource != "nodes":
        raise KubectlError('error: the server doesn\'t have a resource type "%s"' % (resource or ""))
    if names:
        items, missing = [], []
        for n in names:
            try:
                items.append(kube.node(n))
            except KubectlError as e:
                if opts["ignore_not_found"]:
                    continue
                missing.append(str(e))
        single = len(names) == 1
    else:
        items, missing, single = select(kube.nodes(), opts["selector"]), [], False
    out = opts["output"] or ""
    rc = 0
    if missing:
        for m in missing:
            sys.stderr.write(m + "\n")
        rc = 1
        if not items:
            return rc
    obj = (
        items[0]
        if single and items
        else {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}
    )
    if out == "json":
        sys.stdout.write(json.dumps(obj, indent=4) + "\n")
    elif out == "yaml":
        sys.stdout.write(yaml_dump(obj))
    elif out == "name":
        for n in items:
            sys.stdout.write("node/{}\n".format(n["metadata"]["name"]))
    elif out.startswith("jsonpath=") or out.startswith("jsonpath-as-json="):
        tmpl = out.split("=", 1)[1]
        if len(tmpl) >= 2 and tmpl[0] == tmpl[-1] and tmpl[0] in "'\"":
            tmpl = tmpl[1:-1]
        sys.stdout.write(jsonpath(tmpl, obj))
    elif out in ("", "wide"):
        if not items and not names:
            sys.stderr.write("No resources found\n")
            return rc
        headers = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        if out == "wide":
            headers += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        if opts["show_labels"]:
            headers.append("LABELS")
        rows = []
        for n in items:
            row = [
                n["metadata"]["name"],
                node_status(n),
                node_roles(n),
                age(n["metadata"]["creationTimestamp"]),
                n["status"]["nodeInfo"]["kubeletVersion"],
            ]
            if out == "wide":
                info = n["status"]["nodeInfo"]
                row += [
                    n["status"]["addresses"][0]["address"],
                    "<none>",
                    info["osImage"],
                    info["kernelVersion"],
                    info["containerRuntimeVersion"],
                ]
            if opts["show_labels"]:
                row.append(",".join("{}={}".format(*kv) for kv in sorted(n["metadata"]["labels"].items())))
            rows.append(row)
        sys.stdout.write(table(rows, headers, opts["no_headers"]))
    else:
        raise KubectlError(f'error: unable to match a printer suitable for the output format "{out}" (stand-in)')
    return rc


def parse_duration(s):
    if not s:
        return 30.0
    total, num = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for c in s:
        if c.isdigit() or c == ".":
            num += c
        elif c in units and num:
            total += float(num) * units[c]
            num = ""
        else:
            raise KubectlError(f"error: invalid duration {s}")
    if num:
        total += float(num)
    return total


def kubectl_wait(kube, resource, names, opts):
    cond = opts["for"] or ""
    m = re.match(r"^condition=(\w+)(?:=(\w+))?$", cond)
    if resource != "nodes" or not m:
        raise KubectlError("error: the stand-in supports `wait --for=condition=Ready node/NAME` only")
    ctype, want = m.group(1), m.group(2) or "True"
    deadline = time.time() + parse_duration(opts["timeout"])
    if opts["all"] and not names:
        names = [n["metadata"]["name"] for n in kube.nodes()]
    if not names:
        raise KubectlError("error: resource(s) were provided, but no name was specified")
    pending = list(names)
    while True:
        for n in list(pending):
            try:
                node = kube.node(n)
            except KubectlError as e:
                if "NotFound" in str(e):
                    raise KubectlError(f'Error from server (NotFound): nodes "{n}" not found') from None
                raise
            st = [c["status"] for c in node["status"]["conditions"] if c["type"] == ctype]
            if st and st[0].lower() == want.lower():
                sys.stdout.write(f"node/{n} condition met\n")
                pending.remove(n)
        if not pending:
            return 0
        if time.time() >= deadline:
            raise KubectlError(f"error: timed out waiting for the condition on nodes/{pending[0]}")
        time.sleep(0.5)


# ---------------------------------------------------------------- entry


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog == "kubectl":
        return kubectl(args)
    if prog in ("crictl", "ctr"):
        sys.stderr.write(f"{prog}: not simulated by the stand-in k3s\n")
        return 1
    if not args or args[0] in ("help", "-h", "--help"):
        sys.stdout.write(
            "NAME:\n   k3s - Kubernetes, but small and simple (stand-in for tests)\n\n"
            "COMMANDS:\n   server\n   agent\n   kubectl\n"
        )
        return 0
    if args[0] in ("--version", "-v", "version"):
        sys.stdout.write(f"k3s version {VERSION} (standin)\ngo version {GO_VERSION}\n")
        return 0
    cmd, rest = args[0], args[1:]
    if cmd == "server":
        return cmd_server(rest)
    if cmd == "agent":
        return cmd_agent(rest)
    if cmd == "kubectl":
        return kubectl(rest)
    if cmd in (
        "crictl",
        "ctr",
        "etcd-snapshot",
        "secrets-encrypt",
        "certificate",
        "completion",
        "check-config",
        "token",
    ):
        sys.stderr.write(f"k3s {cmd}: not simulated by the stand-in k3s\n")
        return 1
    sys.stderr.write(f'Incorrect Usage: unknown command "{cmd}"\n')
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
