#!/usr/bin/env python3
"""Write a stand-in K3s airgap bundle (NOT K3s; see tests/standin/README.md).

    python3 tests/standin/make_bundle.py --version v1.30.4+k3s1 --delay 0 --out DIR

DIR/k3s                              the stand-in binary (python3 script; version, delay, the
                                     paths of the real control-plane binaries in the test hosts,
                                     kwok's stages and K3s' packaged manifests baked in)
DIR/k3s-airgap-images-amd64.tar.zst  a small valid zstd-compressed tar holding a README (no images)
DIR/install.sh                       the stand-in installer

The output depends only on the arguments and the pinned tool versions (byte for byte). The
binaries themselves are not in the bundle: scripts/tools.sh builds them once, and the test
hosts see its cache read-only at /run/aip-tools (scripts/testhosts.sh); `ensure_tools()`
builds what is missing (or waits for a build already running).
"""

from __future__ import annotations

import argparse
import io
import re
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TOOLS_SH = REPO / "scripts" / "tools.sh"
IMAGES_NAME = "k3s-airgap-images-amd64.tar.zst"
VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+(?:-rc\d+)?\+k3s\d+$")
# the binaries the stand-in runs, and where a test host sees scripts/tools.sh's cache
TOOLS = ("etcd", "etcdctl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
TOOLS_INSIDE = "/run/aip-tools"


def tool_paths() -> dict[str, str]:
    """tool → its path inside a test host (from `scripts/tools.sh list`; nothing is built here)."""
    out = subprocess.run(["bash", str(TOOLS_SH), "list"], capture_output=True, text=True, check=True).stdout
    paths = {}
    for line in out.splitlines():
        fields = line.split()  # name version path state [note...]
        name, path = fields[0], fields[2]
        if name in TOOLS:
            group_dir = Path(path).parent.name  # <group>-<version>: the cache is keyed by version
            paths[name] = f"{TOOLS_INSIDE}/{group_dir}/{name}"
    missing = sorted(set(TOOLS) - set(paths))
    if missing:
        raise SystemExit(f"make_bundle: scripts/tools.sh does not know {missing}")
    return dict(sorted(paths.items()))


def ensure_tools() -> dict[str, Path]:
    """Build the stand-in's binaries if missing (or wait for a build already running): tool → path."""
    paths = {}
    for name in TOOLS:
        r = subprocess.run(["bash", str(TOOLS_SH), name], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"scripts/tools.sh {name} failed:\n{r.stderr[-3000:]}")
        paths[name] = Path(r.stdout.strip())
    return paths


def baked() -> dict[str, object]:
    manifests = {p.name: p.read_text() for p in sorted((HERE / "manifests").glob("*.yaml"))}
    return {
        "tools": tool_paths(),
        "kwok_stages": (HERE / "kwok-stages.yaml").read_text(),
        "manifests": manifests,
    }


def render_binary(version: str, delay: float) -> str:
    src = (HERE / "k3s.py").read_text()
    src, n1 = re.subn(r'^VERSION = "[^"]*"$', f'VERSION = "{version}"', src, count=1, flags=re.M)
    src, n2 = re.subn(r"^DELAY = [0-9.]+$", f"DELAY = {float(delay)!r}", src, count=1, flags=re.M)
    src, n3 = re.subn(r"^BAKED = \{\}$", lambda _: f"BAKED = {baked()!r}", src, count=1, flags=re.M)
    if (n1, n2, n3) != (1, 1, 1):
        raise SystemExit("make_bundle: k3s.py has no VERSION/DELAY/BAKED line to set")
    return src


def zstd_frame(data: bytes) -> bytes:
    """A valid zstd frame of raw (uncompressed) blocks: deterministic, no zstd module needed."""
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    size = len(data)
    # frame header: Single_Segment, Frame_Content_Size in 8 bytes, no checksum, no dict id
    out.append(0b11100000)
    out += struct.pack("<Q", size)
    block_max = 128 * 1024
    pos = 0
    while True:
        chunk = data[pos : pos + block_max]
        pos += len(chunk)
        last = 1 if pos >= size else 0
        header = last | (0 << 1) | (len(chunk) << 3)  # Block_Type 0 = Raw_Block
        out += struct.pack("<I", header)[:3]
        out += chunk
        if last:
            break
    return bytes(out)


def images_tar(version: str) -> bytes:
    text = (
        f"Stand-in K3s airgap images for {version}: this archive holds no container images.\n"
        "Written by tests/standin/make_bundle.py for tests; the stand-in runs no containers.\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("README.standin")
        info.size = len(text)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(text))
    return buf.getvalue()


def write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)


def make_bundle(version: str, delay: float, out: Path) -> dict[str, Path]:
    if not VERSION_RE.match(version):
        raise SystemExit(f"make_bundle: version {version!r} is not like v1.30.4+k3s1")
    if delay < 0:
        raise SystemExit("make_bundle: --delay must be >= 0")
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "k3s": (render_binary(version, delay).encode(), 0o755),
        IMAGES_NAME: (zstd_frame(images_tar(version)), 0o644),
        "install.sh": ((HERE / "install.sh").read_bytes(), 0o755),
    }
    paths = {}
    for name, (data, mode) in files.items():
        write(out / name, data, mode)
        paths[name] = out / name
    return paths


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--version", required=True, help="K3s version to report, e.g. v1.30.4+k3s1")
    ap.add_argument("--delay", type=float, default=0.0, help="extra seconds k3s server/agent wait before starting")
    ap.add_argument("--out", required=True, type=Path, help="output directory")
    a = ap.parse_args(argv)
    for name, path in make_bundle(a.version, a.delay, a.out).items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
