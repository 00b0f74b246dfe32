"""The DaskCluster farm submits to the dask-kubernetes operator, built and checked as plain data.

:func:`cluster_spec` builds the ``DaskCluster`` (``kubernetes.dask.org/v1``) resource: one
scheduler and a group of workers running the farm image (``docker/Dockerfile``), each container
with resource requests and limits and the hardened security context of
``deploy/kubernetes/operator/daskcluster.yaml`` (non-root uid 10001, read-only root file system,
no privilege escalation, every capability dropped, the runtime's default seccomp profile), scratch
on an ``emptyDir`` at ``/tmp`` and the shared event stores on a ``PersistentVolumeClaim`` at ``/data``.
Its defaults give exactly that manifest (a test holds them equal), and the operator's CRD schema
accepts it (tests/test_deploy.py).

Also here: the security contexts (:func:`pod_security_context`, :func:`container_security_context`),
resource quantities (:func:`quantity`), the checks of names and resources, and the settings file of
``farm run --cluster kubernetes --cluster-settings FILE`` (:func:`read_settings`), which is either

* a mapping of :func:`cluster_spec` keywords plus ``namespace`` and ``resource_timeout_s``
  (keys with ``-`` or ``_``, :data:`SETTINGS_KEYS`), e.g.
  ``{image: registry.example.org/farm:0.1.0, n_workers: 8}``, or
* a complete ``DaskCluster`` manifest, returned as written.

Nothing here contacts a cluster; :mod:`farm.cluster.kubernetes` submits the result.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from farm import __version__

__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_SCHEDULER_RESOURCES",
    "DEFAULT_WORKER_RESOURCES",
    "NANNY_PORT",
    "RUN_AS_ID",
    "SCHEDULER_DASHBOARD_PORT",
    "SCHEDULER_PORT",
    "SETTINGS_KEYS",
    "WORKER_DASHBOARD_PORT",
    "WORKER_PORT",
    "cluster_spec",
    "container_security_context",
    "normalise_settings",
    "pod_security_context",
    "quantity",
    "read_settings",
]

DEFAULT_IMAGE = f"farm:{__version__}"
"""The tag ``docker build -f docker/Dockerfile -t farm:0.1.0 .`` gives; push it and name yours."""

# The ports docker/entrypoint.sh listens on; fixed so that the NetworkPolicy can name them.
SCHEDULER_PORT = 8786
SCHEDULER_DASHBOARD_PORT = 8787
WORKER_DASHBOARD_PORT = 8788
WORKER_PORT = 8789
NANNY_PORT = 8790

RUN_AS_ID = 10001
"""uid and gid of the image's ``farm`` user (docker/Dockerfile)."""

DEFAULT_SCHEDULER_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "500m", "memory": "1Gi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}
# requests = limits: Guaranteed QoS, and dask's memory limit (read from the cgroup) is the pod's
DEFAULT_WORKER_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "1", "memory": "4Gi"},
    "limits": {"cpu": "1", "memory": "4Gi"},
}

SETTINGS_KEYS: tuple[str, ...] = (
    "name",
    "image",
    "n_workers",
    "worker_resources",
    "scheduler_resources",
    "namespace",
    "threads_per_worker",
    "data_claim",
    "service_account",
    "image_pull_policy",
    "env",
    "idle_timeout_s",
    "worker_scratch",
    "resource_timeout_s",
)
"""Keys of a settings mapping: the keywords of :func:`cluster_spec` and ``resource_timeout_s``."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|Mi|Gi|Ti|Pi|M|G|T|P)?$")
_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
}


def pod_security_context() -> dict[str, Any]:
    """Pod-level hardening: non-root uid/gid 10001, files on volumes group-owned by it, seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "fsGroup": RUN_AS_ID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level hardening (the restricted Pod Security Standard, plus a read-only root)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_ID,
        "runAsGroup": RUN_AS_ID,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def quantity(value: str | float) -> float:
    """A Kubernetes resource quantity as a number (cores or bytes).

    Decimal suffixes k, M, G, T, P are powers of 1000, binary Ki ... Pi powers of 1024 and m is
    1/1000 (Kubernetes API, ``resource.Quantity``).

    Examples
    --------
    >>> quantity("500m"), quantity("4Gi"), quantity(2)
    (0.5, 4294967296.0, 2.0)
    """
    if isinstance(value, bool):
        msg = f"resource quantity {value!r} is a boolean; give a number or a string like '500m', '4Gi'"
        raise ValueError(msg)
    if isinstance(value, int | float):
        return float(value)
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        msg = f"resource quantity {value!r} is not a Kubernetes quantity; use e.g. '500m', '2', '4Gi', '512Mi'"
        raise ValueError(msg)
    return float(match.group(1)) * _FACTORS[match.group(2)]


def _check_resources(resources: Mapping[str, Any], role: str) -> dict[str, dict[str, Any]]:
    checked: dict[str, dict[str, Any]] = {}
    for kind in ("requests", "limits"):
        section = resources.get(kind) if isinstance(resources, Mapping) else None
        if not isinstance(section, Mapping) or not {"cpu", "memory"} <= set(section):
            msg = (
                f"{role} resources need {kind} for both cpu and memory, e.g. "
                "{requests: {cpu: '1', memory: 4Gi}, limits: {cpu: '1', memory: 4Gi}}"
            )
            raise ValueError(msg)
        # the operator's CRD types quantities as strings (the API server refuses a bare 1)
        checked[kind] = {k: str(v) if isinstance(v, int | float) else v for k, v in section.items()}
    for name in ("cpu", "memory"):
        if quantity(checked["requests"][name]) > quantity(checked["limits"][name]):
            msg = (
                f"{role} {name} request {checked['requests'][name]} exceeds its limit "
                f"{checked['limits'][name]}; Kubernetes refuses such a pod: raise the limit"
            )
            raise ValueError(msg)
    return checked


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or len(value) > 63 or not _DNS_LABEL.match(value):
        msg = (
            f"{what} {value!r} is not a DNS-1123 label; use at most 63 lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
        raise ValueError(msg)
    return value


def _container(
    role: str,
    image: str,
    pull_policy: str,
    args: Sequence[str],
    ports: Sequence[tuple[str, int]],
    resources: Mapping[str, Any],
    env: Mapping[str, str],
    health_port: str,
    mounts: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": role,
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": list(args),
    }
    if env:
        container["env"] = [{"name": k, "value": str(v)} for k, v in env.items()]
    container |= {
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
        "resources": copy.deepcopy(dict(resources)),
        "readinessProbe": {
            "httpGet": {"path": "/health", "port": health_port},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health", "port": health_port},
            "initialDelaySeconds": 15,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
        },
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": n, "mountPath": p} for n, p in mounts],
    }
    return container


def _pod(container: dict[str, Any], volumes: list[dict[str, Any]], account: str) -> dict[str, Any]:
    return {
        "serviceAccountName": account,
        # dask needs no Kubernetes API: no token in the pod; no service variables either (a
        # Service named farm-worker would otherwise inject FARM_WORKER_PORT=tcp://...)
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    }


def cluster_spec(
    *,
    name: str = "farm",
    image: str = DEFAULT_IMAGE,
    n_workers: int = 2,
    worker_resources: Mapping[str, Any] = DEFAULT_WORKER_RESOURCES,
    scheduler_resources: Mapping[str, Any] = DEFAULT_SCHEDULER_RESOURCES,
    namespace: str | None = None,
    threads_per_worker: int = 1,
    data_claim: str | None = "farm-data",
    service_account: str = "farm",
    image_pull_policy: str = "Always",
    env: Mapping[str, str] | None = None,
    idle_timeout_s: int = 0,
    worker_scratch: str = "10Gi",
) -> dict[str, Any]:
    """The ``DaskCluster`` resource farm submits to the dask-kubernetes operator.

    Parameters
    ----------
    name
        Cluster name (a DNS-1123 label); the operator names the scheduler Service
        ``{name}-scheduler``, so workers and clients reach ``tcp://{name}-scheduler:8786``.
    image
        The farm image; the same one (same dask, numpy) as the client that drives the run.
    n_workers
        Replicas of the default worker group; each worker pod runs one dask worker.
    worker_resources, scheduler_resources
        ``{requests: {cpu, memory}, limits: {cpu, memory}}``; both are required, requests may not
        exceed limits.
    namespace
        Written into the resource's metadata when given.
    threads_per_worker
        ``dask worker --nthreads``; keep it at the worker's cpu limit.
    data_claim
        PersistentVolumeClaim (ReadWriteMany) with the event stores, mounted at ``/data`` on the
        workers; ``None`` for none.
    service_account
        ServiceAccount of the pods (``deploy/kubernetes/base/serviceaccount.yaml``); its token is
        not mounted.
    image_pull_policy
        ``Always`` (default: a node re-checks the registry's credentials), ``IfNotPresent`` for
        images side-loaded into kind or minikube, or ``Never``.
    env
        Extra environment variables of scheduler and workers (e.g. ``DASK_DISTRIBUTED__...``).
    idle_timeout_s
        The operator deletes a cluster whose scheduler was idle this long; 0 never.
    worker_scratch
        Size limit of each worker's ``/tmp`` (dask's spill directory).

    Returns
    -------
    dict
        The resource, ready for ``KubeCluster(custom_cluster_spec=...)`` or ``yaml.safe_dump``.
    """
    _check_name(name, "cluster name")
    if len(name) > 63 - len("-scheduler"):
        msg = f"cluster name {name!r} is too long: {name}-scheduler must fit in 63 characters"
        raise ValueError(msg)
    for value, what in ((n_workers, "n_workers"), (threads_per_worker, "threads_per_worker")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"{what} must be a positive whole number, got {value!r}"
            raise ValueError(msg)
    if (
        isinstance(idle_timeout_s, bool)
        or not isinstance(idle_timeout_s, int)
        or idle_timeout_s < 0
    ):
        msg = f"idle_timeout_s must be a whole number of seconds >= 0 (0: never), got {idle_timeout_s!r}"
        raise ValueError(msg)
    if image_pull_policy not in _PULL_POLICIES:
        msg = f"image_pull_policy {image_pull_policy!r} is unknown; choose one of {', '.join(_PULL_POLICIES)}"
        raise ValueError(msg)
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        msg = (
            f"image {image!r} is not an image reference; give e.g. registry.example.org/farm:0.1.0"
        )
        raise ValueError(msg)
    _check_name(service_account, "service_account")
    if data_claim is not None:
        _check_name(data_claim, "data_claim")
    quantity(worker_scratch)
    env = dict(env or {})

    scheduler = _container(
        "scheduler",
        image,
        image_pull_policy,
        ["scheduler"],
        [("tcp-comm", SCHEDULER_PORT), ("http-dashboard", SCHEDULER_DASHBOARD_PORT)],
        _check_resources(scheduler_resources, "scheduler"),
        env,
        "http-dashboard",
        [("tmp", "/tmp")],
    )
    worker_mounts = [("tmp", "/tmp")]
    worker_volumes: list[dict[str, Any]] = [
        {"name": "tmp", "emptyDir": {"sizeLimit": worker_scratch}}
    ]
    if data_claim is not None:
        worker_mounts.append(("data", "/data"))
        worker_volumes.append({"name": "data", "persistentVolumeClaim": {"claimName": data_claim}})
    worker = _container(
        "worker",
        image,
        image_pull_policy,
        # $(DASK_WORKER_NAME) and DASK_SCHEDULER_ADDRESS are set by the operator in each pod
        ["worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", str(threads_per_worker)],
        [
            ("tcp-worker", WORKER_PORT),
            ("tcp-nanny", NANNY_PORT),
            ("http-dashboard", WORKER_DASHBOARD_PORT),
        ],
        _check_resources(worker_resources, "worker"),
        env,
        "http-dashboard",
        worker_mounts,
    )
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = _check_name(namespace, "namespace")
    metadata["labels"] = {"app.kubernetes.io/name": "farm", "app.kubernetes.io/part-of": "farm"}
    return {
        "apiVersion": "kubernetes.dask.org/v1",
        "kind": "DaskCluster",
        "metadata": metadata,
        "spec": {
            "idleTimeout": idle_timeout_s,
            "scheduler": {
                "metadata": {"labels": {"app.kubernetes.io/component": "scheduler"}},
                "spec": _pod(
                    scheduler, [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}], service_account
                ),
                "service": {
                    "type": "ClusterIP",
                    "selector": {
                        "dask.org/cluster-name": name,
                        "dask.org/component": "scheduler",
                    },
                    "ports": [
                        {
                            "name": "tcp-comm",
                            "protocol": "TCP",
                            "port": SCHEDULER_PORT,
                            "targetPort": "tcp-comm",
                        },
                        {
                            "name": "http-dashboard",
                            "protocol": "TCP",
                            "port": SCHEDULER_DASHBOARD_PORT,
                            "targetPort": "http-dashboard",
                        },
                    ],
                },
            },
            "worker": {
                "replicas": n_workers,
                "metadata": {"labels": {"app.kubernetes.io/component": "worker"}},
                "spec": _pod(worker, worker_volumes, service_account),
            },
        },
    }


def normalise_settings(settings: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = str(key).replace("-", "_")
        if name not in SETTINGS_KEYS:
            msg = (
                f"{source}: unknown Kubernetes setting {key!r}; allowed: {', '.join(SETTINGS_KEYS)}"
            )
            raise ValueError(msg)
        out[name] = value
    return out


def read_settings(path: Path | str) -> dict[str, Any]:
    """A settings file: a ``DaskCluster`` manifest (returned whole) or a mapping of settings.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it is not a YAML mapping, is some other Kubernetes resource, or names an unknown key.
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        msg = f"Kubernetes settings file {file} does not exist; see deploy/kubernetes/README.md for the format"
        raise FileNotFoundError(msg)
    try:
        document = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        from farm.inputfiles import yaml_problem

        msg = f"{file} is not valid YAML: {yaml_problem(exc)} (its text is not shown)"
        raise ValueError(msg) from None
    document = {} if document is None else document
    if not isinstance(document, dict):
        msg = f"{file}: expected a mapping of settings ({', '.join(SETTINGS_KEYS)}) or a DaskCluster manifest"
        raise ValueError(msg)
    if "kind" in document or "apiVersion" in document:
        if (document.get("apiVersion"), document.get("kind")) != (
            "kubernetes.dask.org/v1",
            "DaskCluster",
        ):
            msg = (
                f"{file} is a {document.get('apiVersion')} {document.get('kind')}; "
                "--cluster kubernetes takes a kubernetes.dask.org/v1 DaskCluster or a settings mapping"
            )
            raise ValueError(msg)
        if not isinstance(document.get("metadata"), dict) or "name" not in document["metadata"]:
            msg = f"{file}: the DaskCluster needs metadata.name"
            raise ValueError(msg)
        return document
    return normalise_settings(document, str(file))
