"""Kubernetes through the dask-kubernetes operator: submitting the DaskCluster, and the cluster.

:func:`kubernetes_cluster` hands the ``DaskCluster`` of :func:`farm.cluster.k8s_spec.cluster_spec`
to ``dask_kubernetes.operator.KubeCluster``; :func:`submission` works out what it submits (spec,
namespace, timeout) from the settings file (``farm run --cluster kubernetes --cluster-settings
FILE``, read by :func:`farm.cluster.k8s_spec.read_settings`), which is either

* a mapping of :func:`cluster_spec` keywords plus ``namespace`` and ``resource_timeout_s``
  (keys with ``-`` or ``_``), e.g. ``{image: registry.example.org/farm:0.1.0, n_workers: 8}``, or
* a complete ``DaskCluster`` manifest, submitted as written (``--workers`` sets its replicas).

``ClusterOptions.overrides`` holds keywords of the first kind and wins over the file.
:func:`kubeconfig_sources` finds where a client would reach a cluster, and an unreachable API
becomes a ``ConnectionError`` that says what to check.

The manifest construction and validation live in :mod:`farm.cluster.k8s_spec`; its public names
are re-exported here, so ``from farm.cluster.kubernetes import cluster_spec`` keeps working.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from farm.cluster.k8s_spec import (
    DEFAULT_IMAGE,
    DEFAULT_SCHEDULER_RESOURCES,
    DEFAULT_WORKER_RESOURCES,
    NANNY_PORT,
    RUN_AS_ID,
    SCHEDULER_DASHBOARD_PORT,
    SCHEDULER_PORT,
    SETTINGS_KEYS,
    WORKER_DASHBOARD_PORT,
    WORKER_PORT,
    cluster_spec,
    container_security_context,
    normalise_settings,
    pod_security_context,
    quantity,
    read_settings,
)

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
    "kubeconfig_sources",
    "kubernetes_cluster",
    "pod_security_context",
    "quantity",
    "read_settings",
    "submission",
]


def kubeconfig_sources(environ: Mapping[str, str], home: Path) -> list[Path | str]:
    """Where a Kubernetes client would find its cluster, in the order kr8s looks.

    The files of ``$KUBECONFIG`` (``:``-separated) that exist, else ``~/.kube/config`` if it
    exists, and ``"in-cluster"`` when running in a pod (``$KUBERNETES_SERVICE_HOST`` set).
    Nothing is contacted.
    """
    found: list[Path | str] = []
    listed = [Path(p) for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    for candidate in listed or [home / ".kube" / "config"]:
        if candidate.is_file():
            found.append(candidate)
    if environ.get("KUBERNETES_SERVICE_HOST"):
        found.append("in-cluster")
    return found


def submission(options: Any) -> tuple[dict[str, Any], str | None, int]:
    """What :func:`kubernetes_cluster` submits: the DaskCluster, its namespace, the timeout in s.

    Settings come, later ones winning, from the defaults of :func:`cluster_spec`, the settings
    file and ``options.overrides``; ``options.workers`` (``--workers``), when given, beats them
    all and ``options.threads_per_worker`` fills in when no layer sets it. Nothing is contacted.
    """
    loaded = read_settings(options.settings) if options.settings is not None else {}
    overrides = normalise_settings(options.overrides or {}, "ClusterOptions.overrides")
    if loaded.get("kind") == "DaskCluster":
        if overrides:
            msg = (
                f"{options.settings} is a complete DaskCluster; edit it instead of overriding "
                f"{', '.join(sorted(overrides))}"
            )
            raise ValueError(msg)
        spec = copy.deepcopy(loaded)
        if options.workers is not None:
            spec.setdefault("spec", {}).setdefault("worker", {})["replicas"] = options.workers
        return spec, spec["metadata"].get("namespace"), 300
    settings = loaded | overrides
    timeout_s = settings.pop("resource_timeout_s", 300)
    if options.workers is not None:
        settings["n_workers"] = options.workers
    settings.setdefault("threads_per_worker", options.threads_per_worker)
    return cluster_spec(**settings), settings.get("namespace"), timeout_s


def kubernetes_cluster(options: Any, security: Any = None) -> Any:
    """A ``dask_kubernetes.operator.KubeCluster`` created from :func:`cluster_spec`.

    Parameters
    ----------
    options
        :class:`farm.cluster.ClusterOptions`; uses ``workers``, ``threads_per_worker``,
        ``settings`` and ``overrides`` (see the module docstring).
    security
        Must be ``None``: the operator's cluster manager talks to its scheduler over plain TCP.
        For TLS on Kubernetes use the plain manifests (deploy/kubernetes/README.md).

    Returns
    -------
    dask_kubernetes.operator.KubeCluster
        Its DaskCluster is deleted again when it is closed.

    Raises
    ------
    ImportError
        When dask-kubernetes is not installed.
    ConnectionError
        When no Kubernetes cluster is configured or it cannot be reached.
    ValueError
        For TLS, unknown settings or an invalid spec (checked before anything is contacted).
    """
    if security is not None:
        msg = (
            "--tls-dir with --cluster kubernetes is not supported: dask-kubernetes' KubeCluster "
            "connects to its scheduler without TLS. Deploy deploy/kubernetes/plain-tls (see "
            "deploy/kubernetes/README.md) and join it with --scheduler tls://... --tls-dir"
        )
        raise ValueError(msg)
    spec, namespace, timeout_s = submission(options)
    try:
        from dask_kubernetes.operator import KubeCluster
    except ImportError as exc:
        msg = "--cluster kubernetes needs dask-kubernetes: pip install 'farm[kubernetes]'"
        raise ImportError(msg) from exc
    if not kubeconfig_sources(os.environ, Path.home()):
        msg = (
            "--cluster kubernetes found no Kubernetes cluster: no kubeconfig ($KUBECONFIG, "
            "~/.kube/config) and not inside a pod. Point KUBECONFIG at your cluster (check with "
            "`kubectl get nodes`), or start the manifests of deploy/kubernetes/ and use --scheduler"
        )
        raise ConnectionError(msg)
    try:
        return KubeCluster(
            custom_cluster_spec=spec,
            namespace=namespace,
            resource_timeout=timeout_s,
            shutdown_on_close=True,
            quiet=True,
        )
    except (OSError, TimeoutError) as exc:
        raise ConnectionError(_unreachable(spec, exc)) from exc
    except Exception as exc:
        # kr8s and httpx errors (refused connection, 401/403, a missing CRD) share no base class
        if type(exc).__module__.split(".")[0] in {"kr8s", "httpx", "httpcore", "aiohttp"}:
            raise ConnectionError(_unreachable(spec, exc)) from exc
        raise


def _unreachable(spec: Mapping[str, Any], exc: BaseException) -> str:
    return (
        f"could not start DaskCluster {spec['metadata']['name']!r} on Kubernetes: "
        f"{type(exc).__name__}: {exc}. Check `kubectl get nodes`, that the dask operator is "
        "installed (`kubectl get crd daskclusters.kubernetes.dask.org`) and that your account may "
        "create daskclusters in the namespace"
    )
