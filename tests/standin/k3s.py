#!/usr/bin/python3
"""Stand-in `k3s` binary for tests. NOT K3s: K3s' command line, files and processes around the
REAL Kubernetes control plane, with simulated kubelets.

`k3s server` runs the real etcd, kube-apiserver, kube-controller-manager and kube-scheduler
(built by scripts/tools.sh, read-only at /run/aip-tools in the test hosts), with K3s' file
layout (certificates under /var/lib/rancher/k3s/server/tls, /etc/rancher/k3s/k3s.yaml, the
token files). Servers join over the network: an etcd member each (learner, then promoted).
`k3s server` and `k3s agent` register their real Node object and run kwok for it (the
simulated kubelet: node lease, Ready, pods Running). `k3s kubectl` is the real kubectl.
What is still faked, and the join protocol, are in tests/standin/README.md.

make_bundle.py bakes VERSION, DELAY and BAKED (tool paths, kwok stages, manifests) in.
Python 3 standard library plus PyYAML (Debian's python3-yaml) and the openssl command.
"""

import base64
import ctypes
import hashlib
import http.client
import http.server
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import yaml

VERSION = "v1.30.4+k3s1"
DELAY = 0.0
BAKED = {}

GO_VERSION = "go1.22.5"
DATA_DIR = "/var/lib/rancher/k3s"
CONFIG_FILE = "/etc/rancher/k3s/config.yaml"
KUBECONFIG = "/etc/rancher/k3s/k3s.yaml"
NODE_PASSWORD_FILE = "/etc/rancher/node/password"
EVENTS = "/var/log/aip/events.log"
LOG_DIR = "/var/log/aip"
PORT = 6443
CLUSTER_DOMAIN = "cluster.local"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
ETCD_FINALIZER = "wrangler.cattle.io/managed-etcd-controller"
ETCD_NAME_ANNOTATION = "etcd.k3s.cattle.io/node-name"
ETCD_ADDRESS_ANNOTATION = "etcd.k3s.cattle.io/node-address"
BOOTSTRAP_SECRET = "standin-k3s-bootstrap"
# files shared by every server (the cluster's CAs and service-account key): the bootstrap data
SHARED_TLS = (
    "server-ca.crt",
    "server-ca.key",
    "client-ca.crt",
    "client-ca.key",
    "request-header-ca.crt",
    "request-header-ca.key",
    "service.key",
    "etcd/server-ca.crt",
    "etcd/server-ca.key",
    "etcd/peer-ca.crt",
    "etcd/peer-ca.key",
)
# the stand-in only ever connects to loopback and to the test-host network
ALLOWED_NETS = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.231.0.0/24")]
if os.environ.get("AIP_STANDIN_ALLOWED_NETS"):
    ALLOWED_NETS += [ipaddress.ip_network(n) for n in os.environ["AIP_STANDIN_ALLOWED_NETS"].split(",")]


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


class Fatal(Exception):
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
    raise SystemExit(code)


def write_file(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".standin-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def read_file(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def hostname():
    return socket.gethostname().split(".")[0].lower()


def etc_hosts_lookup(name):
    for line in (read_file("/etc/hosts") or "").splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and name in parts[1:]:
            return parts[0]
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
    m = re.match(r"^https://(\[[^\]]+\]|[^:/]+)(?::(\d+))?/?$", url or "")
    if not m:
        raise ValueError(f"invalid server URL {url!r} (https://HOST[:PORT])")
    return m.group(1).strip("[]"), int(m.group(2) or 443)


def tool(name):
    path = (BAKED.get("tools") or {}).get(name)
    if not path or not os.access(path, os.X_OK):
        fatal(
            f"{name} not found at {path} (the stand-in runs the binaries scripts/tools.sh builds; "
            "run `scripts/tools.sh all`, then bring the test hosts up again)"
        )
    return path


def since(t0):
    return f"{time.monotonic() - t0:.1f}s"


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
                data = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as e:
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


def resolve_token(cfg, key="token", required_for=None):
    """(password, CA hash or None) from token / token-file, plain or in K3s' K10 form."""
    tok = cfg.get(key)
    if tok is not None and not isinstance(tok, str):
        tok = str(tok)
    if not tok and cfg.get(key + "-file"):
        path = str(cfg[key + "-file"])
        try:
            with open(path) as f:
                tok = f.read().strip()
        except OSError as e:
            fatal(f"failed to read token file {path}: {e.strerror}")
        if not tok:
            fatal(f"token file {path} is empty")
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


def ca_hash(ca_pem):
    """K3s' token CA hash: the sha256 of the cluster's server CA certificate (its /cacerts)."""
    return hashlib.sha256(ca_pem.encode() if isinstance(ca_pem, str) else ca_pem).hexdigest()


def node_password():
    pw = (read_file(NODE_PASSWORD_FILE) or "").strip()
    if pw:
        return pw
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


def component_args(cfg, key):
    """`kube-apiserver-arg: [a=b, ...]` → ["--a=b", ...] (K3s passes them to the component)."""
    out = []
    for a in as_list(cfg.get(key)):
        a = a.lstrip("-")
        out.append("--" + a)
    return out


def merge_args(defaults, extra):
    """Component flags: K3s' defaults, overridden by `*-arg` entries with the same name."""
    names = {a.split("=", 1)[0] for a in extra}
    return [a for a in defaults if a.split("=", 1)[0] not in names] + extra


def notify_ready():
    p = os.environ.get("AIP_STANDIN_NOTIFY")
    if p:
        with open(p, "w") as f:
            f.write("READY=1\n")


class _HTTPServer(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET
    daemon_threads = True
    allow_reuse_address = True


def serve_kubelet_healthz(cfg):
    """The kubelet's /healthz ("ok"), on 127.0.0.1:10248 unless `kubelet-arg` says otherwise
    (healthz-port=0 switches it off, as on a real kubelet). Served once the node is up."""
    opts = dict(a.partition("=")[::2] for a in as_list(cfg.get("kubelet-arg")) if "=" in a)
    opts = {k.lstrip("-"): v for k, v in opts.items()}
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

    try:
        httpd = _HTTPServer((host, port), Handler)
    except OSError as e:
        fatal(f"kubelet: listen tcp {host}:{port}: bind: {e.strerror}")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def startup_delay(stop):
    """An extra start-up delay (AIP_STANDIN_DELAY overrides the baked-in one; default none)."""
    d = float(os.environ.get("AIP_STANDIN_DELAY", DELAY))
    if d > 0:
        stop.wait(d)


def import_images(data_dir):
    d = os.path.join(data_dir, "agent", "images")
    if os.path.isdir(d):
        for f in sorted(os.listdir(d)):
            log("info", f"Importing images from {os.path.join(d, f)} (stand-in: no container runtime, not loaded)")


# ---------------------------------------------------------------- certificates (openssl)


def openssl(args, input=None):
    r = subprocess.run(["openssl", *args], input=input, capture_output=True)
    if r.returncode != 0:
        raise Fatal(f"openssl {args[0]} failed: {r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def new_key(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path + ".tmp"])
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


def new_ca(base, cn):
    """base.key + base.crt: a self-signed CA (EC P-256, 10 years, like K3s' CAs)."""
    new_key(base + ".key")
    openssl(
        [
            "req",
            "-x509",
            "-new",
            "-key",
            base + ".key",
            "-subj",
            f"/CN={cn}@{int(time.time())}",
            "-days",
            "3650",
            "-sha256",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
            "-out",
            base + ".crt.tmp",
        ]
    )
    os.chmod(base + ".crt.tmp", 0o644)
    os.replace(base + ".crt.tmp", base + ".crt")


def sign(csr_pem, ca_base, out, server=False, client=True, sans=(), days=365):
    ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment"]
    usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
    ext.append("extendedKeyUsage=" + ",".join(usages))
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    with tempfile.NamedTemporaryFile("w", suffix=".ext", delete=False) as f:
        f.write("\n".join(ext) + "\n")
        extfile = f.name
    try:
        openssl(
            [
                "x509",
                "-req",
                "-CA",
                ca_base + ".crt",
                "-CAkey",
                ca_base + ".key",
                "-set_serial",
                "0x" + secrets.token_hex(12),
                "-days",
                str(days),
                "-sha256",
                "-extfile",
                extfile,
                "-out",
                out + ".tmp",
            ],
            input=csr_pem,
        )
    finally:
        os.unlink(extfile)
    os.chmod(out + ".tmp", 0o644)
    os.replace(out + ".tmp", out)


def csr(key, cn, orgs=()):
    subj = "".join(f"/O={o}" for o in orgs) + f"/CN={cn}"
    return openssl(["req", "-new", "-key", key, "-subj", subj])


def new_cert(base, ca_base, cn, orgs=(), server=False, client=True, sans=()):
    """base.key + base.crt signed by CA_BASE; regenerated only when the subject or SANs change."""
    want = json.dumps({"cn": cn, "o": list(orgs), "sans": sorted(sans), "s": server, "c": client, "ca": ca_base})
    stamp = base + ".standin-subject"
    if os.path.exists(base + ".crt") and os.path.exists(base + ".key") and read_file(stamp) == want:
        return False
    new_key(base + ".key")
    sign(csr(base + ".key", cn, orgs), ca_base, base + ".crt", server=server, client=client, sans=sans)
    write_file(stamp, want, 0o600)
    return True


def san_list(names, ips):
    out = []
    for n in names:
        if n and f"DNS:{n}" not in out:
            out.append(f"DNS:{n}")
    for i in ips:
        if i and f"IP:{i}" not in out:
            out.append(f"IP:{i}")
    return out


def is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def kubeconfig_doc(server, ca_data=None, ca_file=None, cert=None, key=None, token=None, embed=False):
    cluster = {"server": server}
    if ca_data is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data.encode()).decode()
    elif ca_file:
        cluster["certificate-authority"] = ca_file
    user = {}
    if cert and key:
        if embed:
            user["client-certificate-data"] = base64.b64encode(open(cert, "rb").read()).decode()
            user["client-key-data"] = base64.b64encode(open(key, "rb").read()).decode()
        else:
            user["client-certificate"] = cert
            user["client-key"] = key
    if token:
        user["token"] = token
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default", "cluster": cluster}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "user": "default"}}],
        "current-context": "default",
        "preferences": {},
        "users": [{"name": "default", "user": user}],
    }


def write_kubeconfig(path, doc, mode=0o600):
    write_file(path, yaml.safe_dump(doc, sort_keys=True), mode)


# ---------------------------------------------------------------- a small API client


class ApiError(Exception):
    def __init__(self, status, body):
        self.status = status
        self.body = body
        msg = body.get("message") if isinstance(body, dict) else str(body)[:300]
        super().__init__(f"{status}: {msg}")


class _Https(http.client.HTTPSConnection):
    """HTTPS to an address we resolved (resolve()), checking the certificate for the name we were given."""

    def __init__(self, ip, port, server_name, timeout, context):
        super().__init__(ip, port, timeout=timeout, context=context)
        self.server_name = server_name

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)


class Api:
    """HTTPS to a Kubernetes API server: client certificate, bearer token or anonymous."""

    def __init__(self, url, ca=None, cert=None, key=None, token=None, timeout=10.0):
        self.host, self.port = split_url(url)
        self.token = token
        self.timeout = timeout
        if ca:
            ctx = ssl.create_default_context(cafile=ca)
        else:  # discovery only: the CA is what we are about to fetch (and then check)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert and key:
            ctx.load_cert_chain(cert, key)
        self.ctx = ctx

    def call(self, method, path, body=None, content_type="application/json"):
        conn = _Https(resolve(self.host), self.port, self.host, self.timeout, self.ctx)
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = content_type
            if self.token:
                headers["Authorization"] = "Bearer " + self.token
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read().decode("utf-8", "replace")
        finally:
            conn.close()
        try:
            out = json.loads(raw) if raw else {}
        except ValueError:
            out = raw
        if r.status >= 400:
            raise ApiError(r.status, out)
        return out

    def get(self, path):
        return self.call("GET", path)

    def merge_patch(self, path, body):
        return self.call("PATCH", path, body, "application/merge-patch+json")


def wait_until(what, fn, stop, timeout=None, interval=0.25, log_every=10.0, child=None):
    """Poll FN until it returns a true value; log what we wait for every LOG_EVERY seconds. Fails
    if CHILD (the process that should get there) exits meanwhile."""
    t0 = time.monotonic()
    last = t0
    err = None
    while not stop.is_set():
        if child is not None and not child.alive():
            raise Fatal(f"{child.name} exited ({child.proc.returncode}) while waiting for {what}: see {child.log_path}")
        try:
            value = fn()
            if value:
                return value
            err = None
        except (OSError, ApiError, ssl.SSLError, http.client.HTTPException) as e:
            err = e
        now = time.monotonic()
        if timeout is not None and now - t0 > timeout:
            raise Fatal(f"timed out after {timeout:.0f}s waiting for {what}" + (f": {err}" if err else ""))
        if now - last >= log_every:
            log("info", f"Waiting for {what}" + (f": {err}" if err else ""))
            last = now
        stop.wait(interval)
    return None


# ---------------------------------------------------------------- child processes


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # the components die with this process, as they would with K3s (they run inside it there)
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setpgid(0, 0)


class Child:
    """One component process (etcd, kube-apiserver, ..., kwok); its output in /var/log/aip."""

    def __init__(self, name, argv, unit):
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(LOG_DIR, f"{unit}-{name}.log")
        self.proc = None
        self.started = 0.0
        self.restarts = 0

    def start(self):
        os.makedirs(LOG_DIR, exist_ok=True)
        out = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=_die_with_parent,
                close_fds=True,
                cwd="/",
                env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"},
            )
        finally:
            os.close(out)
        self.started = time.monotonic()
        log("info", f"Started {self.name} (pid {self.proc.pid}); its log: {self.log_path}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def terminate(self):
        if self.alive():
            self.proc.terminate()

    def wait(self, timeout):
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def log_tail(path, size=4096):
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - size))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def stop_children(children, timeout=3.0):
    for c in children:
        c.terminate()
    deadline = time.monotonic() + timeout
    for c in children:
        c.wait(max(0.1, deadline - time.monotonic()))


# ---------------------------------------------------------------- node registration (kubelet)


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


def meminfo_kib():
    for line in (read_file("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 1 << 20


class Node:
    """What the kubelet does for its Node object, with the node's own credentials (system:node:<name>,
    so NodeRestriction applies), then kwok for its lease, conditions and pods."""

    def __init__(self, cfg, name, role, data_dir, unit):
        self.cfg = cfg
        self.name = name
        self.role = role
        self.unit = unit
        self.agent_dir = os.path.join(data_dir, "agent")
        self.ip = node_ip(cfg)
        self.kubeconfig = os.path.join(self.agent_dir, "kubelet.kubeconfig")
        self.api = None
        self.kwok = None

    def connect(self, server_url):
        d = self.agent_dir
        write_kubeconfig(
            self.kubeconfig,
            kubeconfig_doc(
                server_url,
                ca_file=os.path.join(d, "server-ca.crt"),
                cert=os.path.join(d, "client-kubelet.crt"),
                key=os.path.join(d, "client-kubelet.key"),
            ),
        )
        self.api = Api(
            server_url,
            ca=os.path.join(d, "server-ca.crt"),
            cert=os.path.join(d, "client-kubelet.crt"),
            key=os.path.join(d, "client-kubelet.key"),
        )

    def register(self, stop):
        """Create the Node (labels and taints apply at the first registration only, like the kubelet's
        --node-labels / --register-with-taints), then set its status; on a restart, only the status."""
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/instance-type": "k3s",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "k3s",
        }
        for s in as_list(self.cfg.get("node-label")):
            k, v = parse_label(s)
            labels[k] = v
        taints = [parse_taint(t) for t in as_list(self.cfg.get("node-taint"))]
        # the kubelet registers not-ready; the node-lifecycle controller lifts it once Ready
        taints.append({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"})
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": labels,
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                    "k3s.io/hostname": hostname(),
                    "k3s.io/internal-ip": self.ip,
                    "k3s.io/node-args": json.dumps([self.role]),
                },
            },
            "spec": {"taints": taints, "providerID": f"k3s://{self.name}"},
        }

        def create():
            try:
                self.api.call("POST", "/api/v1/nodes", body)
                event("register", self.name)
                log("info", f"Registered node {self.name}")
                return True
            except ApiError as e:
                if e.status == 409:
                    log("info", f"Node {self.name} was previously registered")
                    return True
                if e.status == 403:
                    fatal(f"Failed to register node {self.name}: {e}")
                raise

        wait_until(f"node {self.name} to register", create, stop, log_every=5)
        uname = os.uname()
        mem = meminfo_kib()
        resources = {"cpu": str(os.cpu_count() or 1), "memory": f"{mem}Ki", "pods": "110"}
        status = {
            "status": {
                "addresses": [{"type": "InternalIP", "address": self.ip}, {"type": "Hostname", "address": hostname()}],
                "capacity": resources,
                "allocatable": resources,
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": "",
                    "containerRuntimeVersion": "standin://kwok",
                    "kernelVersion": uname.release,
                    "kubeProxyVersion": VERSION,
                    "kubeletVersion": VERSION,
                    "machineID": "",
                    "operatingSystem": "linux",
                    "osImage": "K3s stand-in (tests/standin)",
                    "systemUUID": "",
                },
            }
        }
        wait_until(
            f"node {self.name} status",
            lambda: self.api.merge_patch(f"/api/v1/nodes/{self.name}/status", status),
            stop,
            log_every=5,
        )

    def start_kwok(self):
        stages = os.path.join(self.agent_dir, "kwok-stages.yaml")
        write_file(stages, BAKED.get("kwok_stages", ""), 0o644)
        argv = [
            tool("kwok"),
            f"--kubeconfig={self.kubeconfig}",
            f"--config={stages}",
            f"--manage-single-node={self.name}",
            f"--node-ip={self.ip}",
            "--node-lease-duration-seconds=40",  # the kubelet's nodeLeaseDurationSeconds
        ]
        self.kwok = Child("kwok", argv, self.unit)
        self.kwok.start()

    def ready(self):
        n = self.api.get(f"/api/v1/nodes/{self.name}")
        conds = {c["type"]: c["status"] for c in (n.get("status") or {}).get("conditions") or []}
        return conds.get("Ready") == "True"


# ---------------------------------------------------------------- the server


def pem(path):
    return read_file(path) or ""


class Server:
    def __init__(self, cfg):
        self.cfg = cfg
        self.data_dir = str(cfg.get("data-dir") or DATA_DIR)
        self.sdir = os.path.join(self.data_dir, "server")
        self.tls = os.path.join(self.sdir, "tls")
        self.cred = os.path.join(self.sdir, "cred")
        self.unit = os.environ.get("AIP_STANDIN_UNIT", "k3s")
        self.name = str(cfg.get("node-name") or hostname()).lower()
        self.upstream = str(cfg["server"]) if cfg.get("server") else None
        self.cluster_init = truthy(cfg.get("cluster-init"))
        self.disabled = set(as_list(cfg.get("disable")))
        self.ip = node_ip(cfg)
        self.advertise = str(cfg.get("advertise-address") or self.ip)
        self.bind = str(cfg.get("bind-address") or "0.0.0.0")
        self.port = int(cfg.get("https-port") or PORT)
        local = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "") else self.bind
        self.local_url = f"https://{local}:{self.port}" if ":" not in local else f"https://[{local}]:{self.port}"
        self.cluster_cidr = str(cfg.get("cluster-cidr") or "10.42.0.0/16")
        self.service_cidr = str(cfg.get("service-cidr") or "10.43.0.0/16")
        svc = ipaddress.ip_network(self.service_cidr.split(",")[0], strict=False)
        self.service_ip = str(svc.network_address + 1)
        self.cluster_dns = str(cfg.get("cluster-dns") or (svc.network_address + 10))
        self.password, self.given_hash = resolve_token(cfg, required_for="to join a server" if self.upstream else None)
        self.agent_password, _ = resolve_token(cfg, "agent-token")
        self.children = {}
        self.datastore = None
        self.admin = None
        self.member_name = None
        self.stop = threading.Event()
        self.node = Node(cfg, self.name, "server", self.data_dir, self.unit)

    def t(self, *parts):
        return os.path.join(self.tls, *parts)

    # -- etcd

    def etcd_mode(self):
        """K3s' datastore choice: a first server without --cluster-init starts on SQLite (kine);
        --cluster-init (or joining) means etcd, and a server that has etcd data keeps using it
        without the flag. The stand-in runs etcd either way (one member for "SQLite") and
        remembers the SQLite case in server/db/standin-sqlite, to refuse joins as K3s does."""
        marker = os.path.join(self.sdir, "db", "standin-sqlite")
        if self.cluster_init or self.upstream:
            if os.path.exists(marker):
                os.unlink(marker)  # K3s migrates SQLite to etcd here
            return "etcd"
        if os.path.exists(marker) or not os.path.isdir(os.path.join(self.sdir, "db", "etcd", "member")):
            os.makedirs(os.path.dirname(marker), exist_ok=True)
            write_file(marker, "", 0o600)
            return "sqlite-standin"
        return "etcd"

    def etcdctl(self, endpoints, *args, timeout=15):
        argv = [
            tool("etcdctl"),
            f"--endpoints={endpoints}",
            f"--cacert={self.t('etcd', 'server-ca.crt')}",
            f"--cert={self.t('etcd', 'client.crt')}",
            f"--key={self.t('etcd', 'client.key')}",
            "--command-timeout=10s",
            *args,
        ]
        try:
            # dies with this process, as K3s' in-process etcd client would (an etcdctl left
            # running by a killed server outlived its uninstall, retrying a stopped etcd)
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, preexec_fn=_die_with_parent)
        except subprocess.TimeoutExpired:
            raise Fatal(f"etcdctl {' '.join(args)}: no answer within {timeout}s") from None
        if r.returncode != 0:
            raise Fatal(f"etcdctl {' '.join(args)}: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def members(self, endpoints):
        out = json.loads(self.etcdctl(endpoints, "member", "list", "-w", "json"))
        return out.get("members") or []

    def peer_url(self):
        return f"https://{self.ip}:2380"

    def etcd_argv(self, initial_cluster, state):
        d = os.path.join(self.sdir, "db", "etcd")
        defaults = [
            f"--name={self.member_name}",
            f"--data-dir={d}",
            f"--listen-client-urls=https://127.0.0.1:2379,https://{self.ip}:2379",
            f"--advertise-client-urls=https://{self.ip}:2379",
            f"--listen-peer-urls=https://127.0.0.1:2380,https://{self.ip}:2380",
            f"--initial-advertise-peer-urls={self.peer_url()}",
            "--listen-metrics-urls=http://127.0.0.1:2381",
            f"--initial-cluster={initial_cluster}",
            f"--initial-cluster-state={state}",
            f"--cert-file={self.t('etcd', 'server-client.crt')}",
            f"--key-file={self.t('etcd', 'server-client.key')}",
            f"--trusted-ca-file={self.t('etcd', 'server-ca.crt')}",
            "--client-cert-auth=true",
            f"--peer-cert-file={self.t('etcd', 'peer-server-client.crt')}",
            f"--peer-key-file={self.t('etcd', 'peer-server-client.key')}",
            f"--peer-trusted-ca-file={self.t('etcd', 'peer-ca.crt')}",
            "--peer-client-cert-auth=true",
            # K3s' etcd timing (its defaults, not etcd's)
            "--heartbeat-interval=500",
            "--election-timeout=5000",
            "--snapshot-count=10000",
            "--logger=zap",
            "--log-level=warn",
            # NOT K3s: the test hosts share one (virtual) disk, where fdatasync took 1-3.5 s under
            # load and lease updates missed their 5 s deadlines; the data still goes to the files
            "--unsafe-no-fsync=true",
        ]
        return [tool("etcd"), *merge_args(defaults, component_args(self.cfg, "etcd-arg"))]

    def start_etcd(self):
        d = os.path.join(self.sdir, "db", "etcd")
        name_file = os.path.join(d, "name")
        self.member_name = (read_file(name_file) or "").strip()
        have_data = os.path.isdir(os.path.join(d, "member"))
        if not self.member_name or not have_data:
            self.member_name = f"{self.name}-{secrets.token_hex(4)}"
        initial, state = f"{self.member_name}={self.peer_url()}", "new"
        learner = os.path.join(d, "standin-learner")
        os.makedirs(d, mode=0o700, exist_ok=True)
        if not have_data and self.upstream:
            initial, state = self.join_etcd()
            write_file(learner, self.member_name + "\n", 0o600)
        write_file(name_file, self.member_name + "\n", 0o600)
        etcd = self.spawn("etcd", self.etcd_argv(initial, state))
        if os.path.exists(learner):
            self.promote_self(etcd)
            os.unlink(learner)
        wait_until("etcd", self.etcd_healthy, self.stop, timeout=120, child=etcd)

    def upstream_etcd(self):
        host, _ = split_url(self.upstream)
        return f"https://{resolve(host)}:2379"

    def join_etcd(self):
        """A new member of the cluster: added as a learner through the etcd API (quorum is never at
        risk while it catches up), promoted once it has (promote_self). Retried, as K3s retries
        its join: the add can fail while the cluster is busy (a leader change, a slow answer)."""
        result = []

        def attempt():
            try:
                result.append(self._join_etcd_once())
                return True
            except Fatal as e:
                raise OSError(str(e)) from None

        wait_until("joining the etcd cluster", attempt, self.stop, timeout=120, interval=2)
        if not result:
            raise Fatal("stopped while joining the etcd cluster")
        return result[0]

    def _join_etcd_once(self):
        ep = self.upstream_etcd()
        for m in self.members(ep):
            if self.peer_url() in (m.get("peerURLs") or []):
                log("info", f"Removing stale etcd member {m.get('name')} with this node's address")
                self.etcdctl(ep, "member", "remove", format(m["ID"], "x"))
        out = json.loads(
            self.etcdctl(
                ep, "member", "add", self.member_name, "--learner", f"--peer-urls={self.peer_url()}", "-w", "json"
            )
        )
        peers = []
        for m in out.get("members") or []:
            name = m.get("name") or (self.member_name if self.peer_url() in (m.get("peerURLs") or []) else "")
            for u in m.get("peerURLs") or []:
                peers.append(f"{name}={u}")
        log("info", f"Added etcd member {self.member_name} as a learner: {','.join(peers)}")
        return ",".join(peers), "existing"

    def promote_self(self, etcd):
        ep = self.upstream_etcd()

        def promoted():
            for m in self.members(ep):
                if m.get("name") == self.member_name or self.peer_url() in (m.get("peerURLs") or []):
                    if not m.get("isLearner"):
                        return True
                    try:
                        self.etcdctl(ep, "member", "promote", format(m["ID"], "x"))
                        log("info", f"Promoted etcd member {self.member_name} to a voting member")
                        return True
                    except Fatal as e:  # "not in sync with leader" until it has caught up
                        log("debug", str(e))
                        return False
            return False

        def check():
            try:
                return promoted()
            except Fatal as e:
                raise OSError(str(e)) from None

        wait_until(f"etcd member {self.member_name} promotion", check, self.stop, timeout=120, interval=0.5, child=etcd)

    def etcd_healthy(self):
        api = Api(
            "https://127.0.0.1:2379",
            ca=self.t("etcd", "server-ca.crt"),
            cert=self.t("etcd", "client.crt"),
            key=self.t("etcd", "client.key"),
            timeout=3,
        )
        return str(api.get("/health").get("health")) == "true"

    # -- certificates and files

    def ensure_ca(self):
        os.makedirs(os.path.join(self.tls, "etcd"), mode=0o700, exist_ok=True)
        for base, cn in (
            ("server-ca", "k3s-server-ca"),
            ("client-ca", "k3s-client-ca"),
            ("request-header-ca", "k3s-request-header-ca"),
            ("etcd/server-ca", "etcd-server-ca"),
            ("etcd/peer-ca", "etcd-peer-ca"),
        ):
            if not os.path.exists(self.t(base + ".crt")):
                new_ca(self.t(base), cn)
        if not os.path.exists(self.t("service.key")):  # RSA, like K3s' (PKCS#1: what the components read)
            openssl(["genrsa", "-traditional", "-out", self.t("service.key.tmp"), "2048"])
            os.chmod(self.t("service.key.tmp"), 0o600)
            os.replace(self.t("service.key.tmp"), self.t("service.key"))

    def fetch_bootstrap(self):
        """A joining server: the cluster CA (discovery, checked against the token's hash), then the
        bootstrap data (the CAs and the service-account key) with the token."""
        ca = discover_ca(self.upstream, self.given_hash, self.stop)
        if ca is None:
            return False
        ca_file = self.t("server-ca.crt")
        write_file(ca_file, ca, 0o644)
        api = Api(self.upstream, ca=ca_file, token=self.password)

        def get():
            try:
                return api.get(f"/api/v1/namespaces/kube-system/secrets/{BOOTSTRAP_SECRET}")
            except ApiError as e:
                if e.status == 401:
                    fatal(f"Failed to join {self.upstream}: 401 token rejected: the token does not match this cluster")
                if e.status == 403:
                    fatal(f"Failed to join {self.upstream}: 403 the token is not a server token")
                raise

        secret = wait_until(f"bootstrap data from {self.upstream}", get, self.stop, log_every=5)
        if secret is None:
            return False
        data = secret.get("data") or {}
        if (secret.get("metadata", {}).get("annotations") or {}).get("standin.k3s/datastore") != "etcd":
            fatal(
                f"Failed to join {self.upstream}: this server uses the embedded SQLite datastore, not etcd: "
                "start the first server with --cluster-init to join more servers"
            )
        for rel in SHARED_TLS:
            key = rel.replace("/", "-")
            if key not in data:
                fatal(f"bootstrap data from {self.upstream} has no {rel}")
            write_file(self.t(rel), base64.b64decode(data[key]), 0o600 if rel.endswith(".key") else 0o644)
        return True

    def leaf_certs(self):
        t = self.t
        names = [
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
            "localhost",
            hostname(),
            self.name,
        ]
        ips = ["127.0.0.1", self.ip, self.advertise, self.service_ip]
        if self.bind not in ("0.0.0.0", "::", ""):
            ips.append(self.bind)
        for san in as_list(self.cfg.get("tls-san")):
            (ips if is_ip(san) else names).append(san)
        new_cert(
            t("serving-kube-apiserver"),
            t("server-ca"),
            "kube-apiserver",
            server=True,
            client=False,
            sans=san_list(names, ips),
        )
        new_cert(t("client-admin"), t("client-ca"), "system:admin", ["system:masters"])
        new_cert(t("client-controller"), t("client-ca"), "system:kube-controller-manager")
        new_cert(t("client-scheduler"), t("client-ca"), "system:kube-scheduler")
        new_cert(t("client-kube-apiserver"), t("client-ca"), "system:kube-apiserver", ["system:masters"])
        new_cert(t("client-auth-proxy"), t("request-header-ca"), "system:auth-proxy")
        etcd_sans = san_list(["localhost", hostname()], ["127.0.0.1", self.ip])
        new_cert(
            t("etcd", "server-client"), t("etcd", "server-ca"), "etcd-server", server=True, client=True, sans=etcd_sans
        )
        new_cert(
            t("etcd", "peer-server-client"), t("etcd", "peer-ca"), "etcd-peer", server=True, client=True, sans=etcd_sans
        )
        new_cert(t("etcd", "client"), t("etcd", "server-ca"), "etcd-client")
        # the server is a node too: its kubelet credentials, minted here (agents use a CSR)
        a = self.node.agent_dir
        os.makedirs(a, mode=0o700, exist_ok=True)
        shutil.copyfile(t("server-ca.crt"), os.path.join(a, "server-ca.crt"))
        new_cert(os.path.join(a, "client-kubelet"), t("client-ca"), f"system:node:{self.name}", ["system:nodes"])
        # kubeconfigs of the components (K3s keeps them in server/cred)
        for kind, cert in (
            ("admin", "client-admin"),
            ("controller", "client-controller"),
            ("scheduler", "client-scheduler"),
        ):
            write_kubeconfig(
                os.path.join(self.cred, f"{kind}.kubeconfig"),
                kubeconfig_doc(self.local_url, ca_file=t("server-ca.crt"), cert=t(cert + ".crt"), key=t(cert + ".key")),
            )

    def token_files(self):
        """server/token (K10<CA hash>::server:<token>), node-token → token, agent-token; the API
        servers' static tokens (server/cred/passwd) for the join."""
        h = ca_hash(pem(self.t("server-ca.crt")))
        if self.given_hash and self.given_hash != h:
            fatal("token CA hash does not match the cluster CA certificate hash")
        full = f"K10{h}::server:{self.password}"
        write_file(os.path.join(self.sdir, "token"), full + "\n", 0o600)
        agent = f"K10{h}::node:{self.agent_password}" if self.agent_password else full
        write_file(os.path.join(self.sdir, "agent-token"), agent + "\n", 0o600)
        nt = os.path.join(self.sdir, "node-token")
        if not os.path.islink(nt):
            try:
                os.unlink(nt)
            except FileNotFoundError:
                pass
            os.symlink(os.path.join(self.sdir, "token"), nt)

        def csv(s):
            return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s

        lines = [f'{csv(self.password)},server,server,"k3s:server,system:bootstrappers"']
        if self.agent_password and self.agent_password != self.password:
            lines.append(f"{csv(self.agent_password)},node,node,system:bootstrappers")
        write_file(os.path.join(self.cred, "passwd"), "\n".join(lines) + "\n", 0o600)

    # -- components

    def spawn(self, name, argv):
        c = Child(name, argv, self.unit)
        c.start()
        self.children[name] = c
        return c

    def start_apiserver(self):
        t = self.t
        defaults = [
            f"--advertise-address={self.advertise}",
            "--allow-privileged=true",
            "--anonymous-auth=true",
            f"--api-audiences={SA_ISSUER},k3s",
            "--authorization-mode=Node,RBAC",
            f"--bind-address={self.bind}",
            f"--secure-port={self.port}",
            f"--cert-dir={os.path.join(self.tls, 'temporary-certs')}",
            f"--client-ca-file={t('client-ca.crt')}",
            "--enable-admission-plugins=NodeRestriction",
            "--enable-aggregator-routing=true",
            f"--etcd-cafile={t('etcd', 'server-ca.crt')}",
            f"--etcd-certfile={t('etcd', 'client.crt')}",
            f"--etcd-keyfile={t('etcd', 'client.key')}",
            "--etcd-servers=https://127.0.0.1:2379",
            f"--kubelet-client-certificate={t('client-kube-apiserver.crt')}",
            f"--kubelet-client-key={t('client-kube-apiserver.key')}",
            "--profiling=false",
            f"--proxy-client-cert-file={t('client-auth-proxy.crt')}",
            f"--proxy-client-key-file={t('client-auth-proxy.key')}",
            "--requestheader-allowed-names=system:auth-proxy",
            f"--requestheader-client-ca-file={t('request-header-ca.crt')}",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-username-headers=X-Remote-User",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={t('service.key')}",
            f"--service-account-signing-key-file={t('service.key')}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--service-node-port-range=30000-32767",
            "--storage-backend=etcd3",
            f"--tls-cert-file={t('serving-kube-apiserver.crt')}",
            f"--tls-private-key-file={t('serving-kube-apiserver.key')}",
            f"--token-auth-file={os.path.join(self.cred, 'passwd')}",
        ]
        argv = [tool("kube-apiserver"), *merge_args(defaults, component_args(self.cfg, "kube-apiserver-arg"))]
        apiserver = self.spawn("kube-apiserver", argv)
        self.admin = Api(self.local_url, ca=t("server-ca.crt"), cert=t("client-admin.crt"), key=t("client-admin.key"))

        def readyz():
            return self.admin.call("GET", "/readyz") == "ok"

        wait_until("kube-apiserver /readyz", readyz, self.stop, timeout=180, child=apiserver)

    def start_controllers(self):
        t = self.t
        kc = os.path.join(self.cred, "controller.kubeconfig")
        defaults = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--secure-port=10257",
            "--allocate-node-cidrs=true",
            f"--cluster-cidr={self.cluster_cidr}",
            f"--service-cluster-ip-range={self.service_cidr}",
            f"--cluster-signing-kube-apiserver-client-cert-file={t('client-ca.crt')}",
            f"--cluster-signing-kube-apiserver-client-key-file={t('client-ca.key')}",
            f"--cluster-signing-kubelet-client-cert-file={t('client-ca.crt')}",
            f"--cluster-signing-kubelet-client-key-file={t('client-ca.key')}",
            f"--cluster-signing-kubelet-serving-cert-file={t('server-ca.crt')}",
            f"--cluster-signing-kubelet-serving-key-file={t('server-ca.key')}",
            f"--cluster-signing-legacy-unknown-cert-file={t('server-ca.crt')}",
            f"--cluster-signing-legacy-unknown-key-file={t('server-ca.key')}",
            "--configure-cloud-routes=false",
            "--controllers=*,tokencleaner",
            "--leader-elect=true",
            "--profiling=false",
            f"--root-ca-file={t('server-ca.crt')}",
            f"--service-account-private-key-file={t('service.key')}",
            "--use-service-account-credentials=true",
        ]
        self.spawn(
            "kube-controller-manager",
            [
                tool("kube-controller-manager"),
                *merge_args(defaults, component_args(self.cfg, "kube-controller-manager-arg")),
            ],
        )
        kc = os.path.join(self.cred, "scheduler.kubeconfig")
        defaults = [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            "--secure-port=10259",
            "--leader-elect=true",
            "--profiling=false",
        ]
        self.spawn(
            "kube-scheduler",
            [tool("kube-scheduler"), *merge_args(defaults, component_args(self.cfg, "kube-scheduler-arg"))],
        )

    # -- objects

    def deploy_manifests(self):
        """server/manifests: K3s' packaged components (minus `disable`) and the stand-in's bootstrap
        objects, applied at every start like K3s' deploy controller does (server-side apply)."""
        mdir = os.path.join(self.sdir, "manifests")
        os.makedirs(mdir, mode=0o700, exist_ok=True)
        subst = {
            "%{CLUSTER_DNS}%": self.cluster_dns,
            "%{CLUSTER_DOMAIN}%": CLUSTER_DOMAIN,
            "%{DEFAULT_LOCAL_STORAGE_PATH}%": str(
                self.cfg.get("default-local-storage-path") or os.path.join(self.data_dir, "storage")
            ),
            "%{SYSTEM_DEFAULT_REGISTRY}%": (str(self.cfg["system-default-registry"]).rstrip("/") + "/")
            if self.cfg.get("system-default-registry")
            else "",
        }
        files = []
        for fname, text in sorted((BAKED.get("manifests") or {}).items()):
            component = fname.rsplit(".", 1)[0]
            path = os.path.join(mdir, fname)
            if component in self.disabled:
                if os.path.exists(path):
                    os.unlink(path)
                continue
            for k, v in subst.items():
                text = text.replace(k, v)
            write_file(path, text, 0o600)
            files.append(path)
        # discovery (the CA, readable without credentials) and the bootstrap data (token holders)
        ca = pem(self.t("server-ca.crt"))
        info = kubeconfig_doc(f"https://{self.advertise}:{self.port}", ca_data=ca)
        objs = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                "data": {"kubeconfig": yaml.safe_dump(info, sort_keys=True)},
            }
        ]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": BOOTSTRAP_SECRET, "namespace": "kube-system", "annotations": {}},
            "type": "Opaque",
            "data": {
                rel.replace("/", "-"): base64.b64encode(open(self.t(rel), "rb").read()).decode() for rel in SHARED_TLS
            },
        }
        # which datastore the cluster has (a joining server refuses to join a "SQLite" one)
        secret["metadata"]["annotations"]["standin.k3s/datastore"] = self.datastore
        objs.append(secret)
        for f in files:
            with open(f) as fh:
                objs += [o for o in yaml.safe_load_all(fh) if o]
        pending = list(objs)

        def apply():
            while pending:
                server_side_apply(self.admin, pending[0])
                pending.pop(0)
            return True

        wait_until("the packaged manifests", apply, self.stop, timeout=120, interval=1)

    def label_own_node(self):
        """K3s sets the role labels on server nodes itself (the kubelet may not: NodeRestriction),
        and, on etcd members, the annotations and the finalizer its etcd controller works with."""
        labels = {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"}
        etcd = self.datastore == "etcd"
        patch = {"metadata": {"labels": labels}}
        if etcd:
            labels["node-role.kubernetes.io/etcd"] = "true"
            patch["metadata"]["annotations"] = {
                ETCD_NAME_ANNOTATION: self.member_name,
                ETCD_ADDRESS_ANNOTATION: self.ip,
            }

        def apply():
            n = self.admin.get(f"/api/v1/nodes/{self.name}")
            if etcd:
                fins = list(n["metadata"].get("finalizers") or [])
                if ETCD_FINALIZER not in fins:
                    patch["metadata"]["finalizers"] = [*fins, ETCD_FINALIZER]
                    patch["metadata"]["resourceVersion"] = n["metadata"]["resourceVersion"]
            try:
                self.admin.merge_patch(f"/api/v1/nodes/{self.name}", patch)
            except ApiError as e:
                if e.status == 409:
                    return False
                raise
            return True

        wait_until(f"role labels on node {self.name}", apply, self.stop, timeout=60)

    # -- controllers (every server, each second)

    def sync(self):
        nodes = self.admin.get("/api/v1/nodes").get("items") or []
        for n in nodes:
            md = n["metadata"]
            if md.get("deletionTimestamp") and ETCD_FINALIZER in (md.get("finalizers") or []):
                self.remove_etcd_member(n)
        self.node_hosts(nodes)

    def remove_etcd_member(self, n):
        """K3s' etcd controller: a deleted server Node takes its etcd member with it (through the
        etcd API), then the finalizer goes. A server leaves its own removal to the others, unless
        it is the last voting member (then there is nothing to remove)."""
        md = n["metadata"]
        name = (md.get("annotations") or {}).get(ETCD_NAME_ANNOTATION)
        address = (md.get("annotations") or {}).get(ETCD_ADDRESS_ANNOTATION)
        try:
            members = self.members("https://127.0.0.1:2379")
        except Fatal as e:
            log("error", f"etcd member list: {e}")
            return
        mine = [m for m in members if m.get("name") == self.member_name]
        target = [
            m
            for m in members
            if (name and m.get("name") == name) or (address and f"https://{address}:2380" in (m.get("peerURLs") or []))
        ]
        voters = [m for m in members if not m.get("isLearner")]
        for m in target:
            if mine and m["ID"] == mine[0]["ID"]:
                if len(voters) > 1:
                    return  # another server removes us
                log("info", f"Node {md['name']} is the last etcd member: nothing to remove")
                continue
            try:
                self.etcdctl("https://127.0.0.1:2379", "member", "remove", format(m["ID"], "x"))
                log("info", f"Removed etcd member {m.get('name')} of deleted node {md['name']}")
            except Fatal as e:
                if "member not found" not in str(e):
                    log("error", str(e))
                    return
        fins = [f for f in md.get("finalizers") or [] if f != ETCD_FINALIZER]
        try:
            self.admin.merge_patch(
                f"/api/v1/nodes/{md['name']}",
                {"metadata": {"finalizers": fins, "resourceVersion": md["resourceVersion"]}},
            )
        except ApiError as e:
            if e.status not in (404, 409):
                raise

    def node_hosts(self, nodes):
        """K3s keeps the nodes' addresses in the coredns ConfigMap's NodeHosts."""
        if "coredns" in self.disabled:
            return
        lines = []
        for n in sorted(nodes, key=lambda n: n["metadata"]["name"]):
            if n["metadata"].get("deletionTimestamp"):
                continue
            for a in (n.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP":
                    lines.append(f"{a['address']} {n['metadata']['name']}")
        want = "\n".join(lines) + "\n"
        if want == getattr(self, "_node_hosts", None):
            return
        try:
            cm = self.admin.get("/api/v1/namespaces/kube-system/configmaps/coredns")
        except ApiError as e:
            if e.status == 404:
                return
            raise
        if (cm.get("data") or {}).get("NodeHosts") != want:
            self.admin.merge_patch("/api/v1/namespaces/kube-system/configmaps/coredns", {"data": {"NodeHosts": want}})
        self._node_hosts = want

    # -- run

    def run(self):
        t0 = time.monotonic()
        log("info", f"Starting k3s {VERSION} (stand-in: the real etcd, kube-apiserver, controllers and scheduler)")
        if self.upstream:
            try:
                split_url(self.upstream)
            except ValueError as e:
                fatal(str(e))
        if self.cfg.get("flannel-iface"):
            log("info", "flannel-iface={} (stand-in: no flannel)".format(self.cfg["flannel-iface"]))
        import_images(self.data_dir)
        startup_delay(self.stop)
        if not self.password:
            tok = read_file(os.path.join(self.sdir, "token"))
            if tok:
                self.password = parse_token(tok.strip())[0]
            else:
                self.password = secrets.token_hex(24)
                log("info", "no token configured: generated a random cluster token")
        os.makedirs(self.sdir, mode=0o700, exist_ok=True)
        os.makedirs(self.cred, mode=0o700, exist_ok=True)
        if self.upstream and not all(os.path.exists(self.t(rel)) for rel in SHARED_TLS):
            if not self.fetch_bootstrap():
                return 0
        self.ensure_ca()
        self.leaf_certs()
        self.token_files()
        if self.stop.is_set():
            return 0
        self.datastore = self.etcd_mode()  # before etcd has data of its own
        self.start_etcd()
        log("info", f"etcd is up ({since(t0)})")
        self.start_apiserver()
        log("info", f"kube-apiserver is ready ({since(t0)})")
        self.deploy_manifests()
        self.start_controllers()
        mode = kubeconfig_mode(self.cfg.get("write-kubeconfig-mode"))
        kc_path = str(self.cfg.get("write-kubeconfig") or KUBECONFIG)
        write_kubeconfig(
            kc_path,
            kubeconfig_doc(
                self.local_url,
                ca_data=pem(self.t("server-ca.crt")),
                cert=self.t("client-admin.crt"),
                key=self.t("client-admin.key"),
                embed=True,
            ),
            mode,
        )
        os.chmod(kc_path, mode)
        log("info", f"Wrote kubeconfig {kc_path}")
        node_password()
        self.node.connect(self.local_url)
        self.node.register(self.stop)
        self.label_own_node()
        self.node.start_kwok()
        self.children["kwok"] = self.node.kwok
        wait_until(f"node {self.name} Ready", self.node.ready, self.stop, timeout=120, child=self.node.kwok)
        if self.stop.is_set():
            return 0
        log("info", f"k3s is up and running (stand-in); control plane ready in {since(t0)}")
        event("ready", self.unit)
        serve_kubelet_healthz(self.cfg)  # after the event: whoever sees "ok" finds "ready" logged
        notify_ready()
        last_sync = 0.0
        while not self.stop.wait(0.5):
            self.supervise()
            if time.monotonic() - last_sync >= 1.0:
                last_sync = time.monotonic()
                try:
                    self.sync()
                except (OSError, ApiError, ssl.SSLError, http.client.HTTPException) as e:
                    log("error", f"controllers: {e}")
        return 0

    def supervise(self):
        """A component that exits is started again (K3s would exit and systemd restart it);
        etcd that keeps exiting (its member was removed) stays down."""
        for name, c in list(self.children.items()):
            if c.alive() or c.restarts < 0:
                continue
            rc = c.proc.returncode if c.proc else None
            if name == "etcd" and "permanently removed from the cluster" in log_tail(c.log_path):
                log("info", "etcd: this member was removed from the cluster; it stays down")
                c.restarts = -1
                continue
            if c.restarts >= 5:
                continue
            c.restarts += 1
            log("error", f"{name} exited ({rc}); starting it again ({c.restarts}/5)")
            c.start()

    def shutdown(self):
        log("info", "Shutting down (stand-in): the components first, etcd last")
        stop_children([c for n, c in self.children.items() if n != "etcd"])
        if "etcd" in self.children:
            stop_children([self.children["etcd"]], timeout=5.0)


_DISCOVERED = {}  # (host, port, apiVersion) → (path prefix, its resources)


def api_resource(api, api_version, kind):
    """(path prefix, resource, namespaced) of a kind, from the API server's own discovery — what
    kubectl does — so any kind a packaged manifest names resolves (a hand-kept table of kinds once
    missed RuntimeClass and every stand-in server exited on runtimes.yaml)."""
    key = (api.host, api.port, api_version)
    if key not in _DISCOVERED:
        prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        _DISCOVERED[key] = (prefix, api.get(prefix).get("resources") or [])
    prefix, resources = _DISCOVERED[key]
    for r in resources:
        if r.get("kind") == kind and "/" not in r["name"]:
            return prefix, r["name"], bool(r.get("namespaced"))
    del _DISCOVERED[key]  # asked again next time: a group can be served before all its kinds are
    raise ApiError(404, f"the API server serves no kind {kind} in {api_version}")


def server_side_apply(api, obj):
    """What `kubectl apply --server-side --force-conflicts --field-manager=k3s` does for one object."""
    prefix, resource, namespaced = api_resource(api, obj["apiVersion"], obj["kind"])
    md = obj["metadata"]
    ns = f"/namespaces/{md.get('namespace', 'default')}" if namespaced else ""
    path = f"{prefix}{ns}/{resource}/{md['name']}?fieldManager=k3s&force=true"
    return api.call("PATCH", path, obj, "application/apply-patch+yaml")


def kubeconfig_mode(v):
    """write-kubeconfig-mode: "0644" (a string), or what YAML made of 0644 unquoted (an int)."""
    if v is None or v == "":
        return 0o600
    if isinstance(v, int):
        return v if v <= 0o777 else int(str(v), 8)
    return int(str(v), 8)


def discover_ca(url, want_hash, stop):
    """The cluster CA from kube-public/cluster-info (anonymous; no token is sent before the CA is
    known). With a K10 token, it must match the token's CA hash."""
    api = Api(url, timeout=5)

    def get():
        try:
            cm = api.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
        except ApiError as e:
            if e.status in (401, 403, 404, 500, 503):
                return None  # the server is not (fully) up yet
            raise
        doc = yaml.safe_load(cm["data"]["kubeconfig"])
        return base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()

    ca = wait_until(f"the cluster CA from {url}", get, stop, log_every=5)
    if ca and want_hash and ca_hash(ca) != want_hash:
        fatal(f"Failed to join {url}: the server's CA does not match the token's CA hash")
    return ca


def cmd_server(args):
    cfg, _ = effective_config(args)
    srv = Server(cfg)
    signal.signal(signal.SIGTERM, lambda *_: srv.stop.set())
    signal.signal(signal.SIGINT, lambda *_: srv.stop.set())
    try:
        return srv.run()
    except Fatal as e:
        fatal(str(e))
    finally:
        srv.shutdown()


# ---------------------------------------------------------------- the agent


def agent_credentials(url, password, name, agent_dir, stop):
    """Kubelet TLS bootstrapping: the node's key, a CertificateSigningRequest sent with the token
    (a bootstrap identity), approved and signed by kube-controller-manager."""
    crt = os.path.join(agent_dir, "client-kubelet.crt")
    key = os.path.join(agent_dir, "client-kubelet.key")
    stamp = os.path.join(agent_dir, "client-kubelet.standin-subject")
    if os.path.exists(crt) and read_file(stamp) == name:
        return True
    api = Api(url, ca=os.path.join(agent_dir, "server-ca.crt"), token=password)
    new_key(key)
    request = csr(key, f"system:node:{name}", ["system:nodes"])
    body = {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"generateName": "node-csr-"},
        "spec": {
            "request": base64.b64encode(request).decode(),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    }

    def post():
        try:
            return api.call("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests", body)
        except ApiError as e:
            if e.status == 401:
                fatal(f"Failed to join {url}: 401 token rejected: the token does not match this cluster")
            if e.status == 403:
                return None  # the bootstrap RBAC is not there yet
            raise

    created = wait_until("the node certificate request", post, stop, log_every=5)
    if created is None:
        return False
    path = "/apis/certificates.k8s.io/v1/certificatesigningrequests/" + created["metadata"]["name"]

    def issued():
        st = api.get(path).get("status") or {}
        for c in st.get("conditions") or []:
            if c.get("type") in ("Denied", "Failed") and c.get("status") == "True":
                fatal(f"node certificate request {created['metadata']['name']}: {c.get('type')}: {c.get('message')}")
        return st.get("certificate")

    cert = wait_until("the node certificate (kube-controller-manager signs it)", issued, stop, timeout=300)
    if cert is None:
        return False
    write_file(crt, base64.b64decode(cert), 0o644)
    write_file(stamp, name, 0o600)
    log("info", f"Got the node client certificate system:node:{name}")
    return True


def cmd_agent(args):
    cfg, _ = effective_config(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    unit = os.environ.get("AIP_STANDIN_UNIT", "k3s-agent")
    log("info", f"Starting k3s agent {VERSION} (stand-in: kwok is its kubelet)")
    url = cfg.get("server")
    if not url:
        fatal("--server is required")
    url = str(url)
    try:
        split_url(url)
    except ValueError as e:
        fatal(str(e))
    password, given_hash = resolve_token(cfg, required_for="to join a server")
    data_dir = str(cfg.get("data-dir") or DATA_DIR)
    name = str(cfg.get("node-name") or hostname()).lower()
    node = Node(cfg, name, "agent", data_dir, unit)
    import_images(data_dir)
    startup_delay(stop)
    try:
        t0 = time.monotonic()
        os.makedirs(node.agent_dir, mode=0o700, exist_ok=True)
        ca = discover_ca(url, given_hash, stop)
        if ca is None:
            return 0
        write_file(os.path.join(node.agent_dir, "server-ca.crt"), ca, 0o644)
        node_password()
        if not agent_credentials(url, password, name, node.agent_dir, stop):
            return 0
        node.connect(url)
        node.register(stop)
        node.start_kwok()
        if not wait_until(f"node {name} Ready", node.ready, stop, timeout=120, child=node.kwok):
            return 0
        write_file(
            os.path.join(data_dir, "agent", "standin-registered"),
            json.dumps({"name": name, "server": url, "time": time.time()}) + "\n",
            0o600,
        )
        log("info", f"k3s agent is up and running (stand-in); node {name} Ready in {since(t0)}")
        event("ready", unit)
        serve_kubelet_healthz(cfg)  # after the event: whoever sees "ok" finds "ready" logged
        notify_ready()
        while not stop.wait(0.5):
            if not node.kwok.alive():
                log("error", f"kwok exited ({node.kwok.proc.returncode}); starting it again")
                node.kwok.start()
        return 0
    except Fatal as e:
        fatal(str(e))
    finally:
        log("info", "Shutting down (stand-in)")
        if node.kwok is not None:
            stop_children([node.kwok])


# ---------------------------------------------------------------- kubectl

# kubectl flags that take a separate value (`--flag value`): to find the verb and its arguments
KUBECTL_VALUE_FLAGS = {
    "--kubeconfig",
    "--context",
    "--cluster",
    "--user",
    "-n",
    "--namespace",
    "-s",
    "--server",
    "--token",
    "-o",
    "--output",
    "-l",
    "--selector",
    "--field-selector",
    "--timeout",
    "--grace-period",
    "--pod-selector",
    "--chunk-size",
    "--request-timeout",
    "--cache-dir",
    "--certificate-authority",
    "--client-certificate",
    "--client-key",
    "-v",
    "--v",
}
NODE_VERBS = ("drain", "cordon", "uncordon", "delete", "label", "taint")
# what kubectl prints when it changed a node → the event the stand-in logs
NODE_OUTPUT = [
    (re.compile(r"^node/(\S+) drained$"), "drain"),
    (re.compile(r"^node/(\S+) cordoned$"), "cordon"),
    (re.compile(r"^node/(\S+) uncordoned$"), "uncordon"),
    (re.compile(r'^node "(\S+)" deleted$'), "delete-node"),
    (re.compile(r"^node/(\S+) (?:un)?labeled$"), "label"),
    (re.compile(r"^node/(\S+) (?:un)?tainted$"), "taint"),
]


def kubectl_verb(argv):
    it = iter(argv)
    for a in it:
        if a.startswith("-"):
            if "=" not in a and a in KUBECTL_VALUE_FLAGS:
                next(it, None)
            continue
        return a
    return None


def kubectl(argv):
    """The real kubectl, with K3s' default kubeconfig (/etc/rancher/k3s/k3s.yaml when readable).
    For node changes (drain, cordon, delete node, ...) it logs what kubectl reports it did to
    /var/log/aip/events.log."""
    env = dict(os.environ)
    explicit = any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in argv)
    if not explicit and not env.get("KUBECONFIG") and os.path.exists(KUBECONFIG):
        if os.access(KUBECONFIG, os.R_OK):
            env["KUBECONFIG"] = KUBECONFIG
        else:
            log(
                "warning",
                f"Unable to read {KUBECONFIG}, please start server with --write-kubeconfig-mode or "
                "--write-kubeconfig-group to modify kube config permissions",
            )
    binary = tool("kubectl")
    if kubectl_verb(argv) not in NODE_VERBS:
        os.execve(binary, ["kubectl", *argv], env)
    proc = subprocess.Popen([binary, *argv], env=env, stdout=subprocess.PIPE)
    for raw in proc.stdout:
        sys.stdout.buffer.write(raw)
        sys.stdout.flush()
        line = raw.decode(errors="replace").strip()
        for pattern, ev in NODE_OUTPUT:
            m = pattern.match(line)
            if m:
                event(ev, m.group(1))
    return proc.wait()


# ---------------------------------------------------------------- entry


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if prog == "kubectl":
        return kubectl(args)
    if prog in ("crictl", "ctr"):
        sys.stderr.write(f"{prog}: not simulated by the stand-in k3s (there is no container runtime)\n")
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
