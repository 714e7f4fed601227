"""Each rule fires on a violating resource and stays quiet on a good one."""

from __future__ import annotations

from typing import Any

from stacks.rules import RULES, View, check_views


def fired(*views: View) -> set[str]:
    return {v.rule for v in check_views(list(views))}


GOOD_RELEASE = View(
    "kubernetes:helm.sh/v3:Release",
    "csghub-release",
    {"chart": "csghub", "version": "1.17.0", "values": {"casdoor": {"admin": {"password": "[secret]"}}}},
    provider="p",
    protect=True,
)


def test_good_resources_pass() -> None:
    assert fired(GOOD_RELEASE) == set()


def test_seed_credentials() -> None:
    for bad in (
        {"casdoor": {"admin": {"password": "Root@1234"}}},
        {"minio": {"rootUser": "minioadmin"}},
        {"mysql": {"rootPassword": "OpenI2018"}},
        {"mysql": {"rootPassword": "openhydra"}},
    ):
        v = View(
            "kubernetes:helm.sh/v3:Release",
            "x-csghub",
            {"chart": "c", "version": "1.0.0", "values": bad},
            provider="p",
            protect=True,
        )
        assert fired(v) == {"no-seed-credentials"}, bad
    # the name 'openhydra' is fine where it is not a credential
    ok = View("kubernetes:core/v1:Namespace", "n", {"metadata": {"name": "openhydra"}}, provider="p")
    assert fired(ok) == set()


def test_pinned_versions() -> None:
    repo = {"repo": "https://charts.opencsg.com/csghub"}
    v = View(
        "kubernetes:helm.sh/v3:Release",
        "x-csghub",
        {"chart": "csghub", "repositoryOpts": repo, "values": {}},
        provider="p",
        protect=True,
    )
    assert fired(v) == {"pinned-versions"}
    local = View(
        "kubernetes:helm.sh/v3:Release", "x-csghub", {"chart": "./charts/csghub-1.17.0.tgz"}, provider="p", protect=True
    )
    assert fired(local) == set()
    cf = View(
        "kubernetes:yaml/v2:ConfigFile", "k", {"file": "https://example.com/latest/serving-core.yaml"}, custom=False
    )
    assert fired(cf) == {"pinned-versions"}


def test_secret_outputs() -> None:
    cmd = View("command:remote:Command", "c", {"create": "bash -c x k3s-install.sh", "stdin": "[secret]"})
    assert fired(cmd) == {"secret-outputs"}
    kube = View(
        "command:remote:Command", "k", {"create": "bash -c x k3s-kubeconfig.sh"}, additional_secret_outputs=("stdin",)
    )
    assert fired(kube) == {"secret-outputs"}
    ok = View("command:remote:Command", "c", {"create": "x", "stdin": "[secret]"}, additional_secret_outputs=("stdin",))
    assert fired(ok) == set()


def test_plain_secrets() -> None:
    v = View("kubernetes:core/v1:ConfigMap", "c", {"data": {"password": "[encrypted]"}}, provider="p")
    assert fired(v) == {"no-plain-secrets"}
    g = View("kubernetes:core/v1:ConfigMap", "c", {"data": {"token": "plan-fake-octopus-token"}}, provider="p")
    assert fired(g) == {"no-plain-secrets"}


def test_explicit_provider() -> None:
    assert fired(View("kubernetes:core/v1:Namespace", "n", {})) == {"explicit-provider"}


def test_protected_data() -> None:
    for typ in ("kubernetes:core/v1:PersistentVolume", "kubernetes:core/v1:PersistentVolumeClaim"):
        assert fired(View(typ, "pv", {}, provider="p")) == {"protected-data"}
    rel = View(
        "kubernetes:helm.sh/v3:Release",
        "csghub-release",
        {"name": "csghub", "chart": "c", "version": "1.0.0"},
        provider="p",
    )
    assert fired(rel) == {"protected-data"}
    nfs = View(
        "kubernetes:helm.sh/v3:Release",
        "storage-nfs",
        {"name": "nfs-provisioner", "chart": "c", "version": "1.0.0"},
        provider="p",
    )
    assert fired(nfs) == set()
    rel = View("kubernetes:helm.sh/v3:Release", "x-octopus", {"chart": "c", "version": "1.0.0"}, provider="p")
    assert fired(rel) == {"protected-data"}


def test_unique_node_ports() -> None:
    a = View(
        "kubernetes:helm.sh/v3:Release",
        "a-csghub",
        {"chart": "c", "version": "1.0.0", "values": {"gw": {"nodePorts": {"gitssh": 30022}}}},
        provider="p",
        protect=True,
    )
    b = View("kubernetes:core/v1:Service", "b", {"spec": {"ports": [{"port": 22, "nodePort": 30022}]}}, provider="p")
    assert fired(a, b) == {"unique-node-ports"}
    c = View("kubernetes:core/v1:Service", "c", {"spec": {"ports": [{"port": 22, "nodePort": 30023}]}}, provider="p")
    assert fired(a, c) == set()


def test_every_rule_has_a_test_above() -> None:
    assert {r.name for r in RULES} == {
        "no-seed-credentials",
        "pinned-versions",
        "secret-outputs",
        "no-plain-secrets",
        "explicit-provider",
        "protected-data",
        "unique-node-ports",
    }


def test_policy_pack_adapter_reports_the_same_rules(monkeypatch: Any) -> None:
    import runpy
    from types import SimpleNamespace

    import pulumi_policy

    from tests.conftest import ROOT

    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kw: kw)  # no engine here: capture the pack
    pack = runpy.run_path(str(ROOT / "policy" / "__main__.py"))
    opts = SimpleNamespace(protect=False, additional_secret_outputs=[])
    bad = SimpleNamespace(
        resource_type="kubernetes:core/v1:PersistentVolume", name="pv", props={}, opts=opts, provider=None
    )
    good = SimpleNamespace(
        resource_type="kubernetes:core/v1:Namespace",
        name="ns",
        props={"metadata": {"name": "x"}},
        opts=opts,
        provider=SimpleNamespace(urn="urn:pulumi:s::p::pulumi:providers:kubernetes::k3s-provider"),
    )
    reported: list[str] = []
    pack["validate"](SimpleNamespace(resources=[bad, good]), reported.append)
    assert sorted(r.split("]")[0] for r in reported) == ["[explicit-provider", "[protected-data"]
    assert all("::pv:" in r for r in reported)
