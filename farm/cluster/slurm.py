"""SLURM through dask-jobqueue: each dask worker is one ``sbatch`` job (docs/internals.md §4, docs/guide-operators.md).

The settings of a job (cores, memory, walltime, partition, ...) come, later ones winning, from

1. :data:`DEFAULTS` below (one single-core worker with 2 GiB per job, partition ``debug``,
   scheduler on loopback: right for the single-node SLURM of ``deploy/slurm/local-slurm.sh``);
2. ``deploy/slurm/jobqueue.yaml`` when farm runs from a source checkout;
3. ``ClusterOptions.settings``, a YAML file in the same format (``farm run --cluster-settings``);
4. ``ClusterOptions.overrides``, a mapping of the same keys.

The YAML format is dask-jobqueue's own (``jobqueue: slurm: {cores: 1, ...}``), so a settings file
also works as ``~/.config/dask/jobqueue.yaml`` for plain dask-jobqueue use.

A scheduler bound to loopback is reachable only from this host; :func:`slurm_cluster` refuses it
when the partition holds other nodes instead of letting the workers time out. On a real cluster
set ``scheduler-options: {interface: ib0}`` (or the site's network) in the settings file.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULTS",
    "DEPLOY_SETTINGS",
    "SETTINGS_KEYS",
    "check_scheduler_reachable",
    "cluster_kwargs",
    "merge_settings",
    "read_settings",
    "scheduler_on_loopback",
    "slurm_cluster",
]

DEPLOY_SETTINGS = Path(__file__).resolve().parents[2] / "deploy" / "slurm" / "jobqueue.yaml"
"""The jobqueue settings of a source checkout; absent when farm is installed from a wheel."""

SETTINGS_KEYS: tuple[str, ...] = (
    "name",
    "cores",
    "processes",
    "memory",
    "walltime",
    "queue",
    "account",
    "python",
    "interface",
    "death-timeout",
    "local-directory",
    "log-directory",
    "shared-temp-directory",
    "shebang",
    "worker-command",
    "worker-extra-args",
    "job-cpu",
    "job-mem",
    "job-extra-directives",
    "job-directives-skip",
    "job-script-prologue",
    "scheduler-options",
)
"""dask-jobqueue's ``jobqueue.slurm`` keys that farm passes on (its deprecated aliases excluded)."""

DEFAULTS: dict[str, Any] = {
    "name": "farm-worker",
    "cores": 1,
    "processes": 1,
    "memory": "2GiB",
    "walltime": "01:00:00",
    "queue": "debug",
    "python": None,
    "death-timeout": 60,
    "local-directory": "/tmp",
    "log-directory": "~/.cache/farm/slurm-logs",
    "job-extra-directives": [],
    "job-script-prologue": [],
    "worker-extra-args": [],
    "scheduler-options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
}
"""Packaged defaults; ``deploy/slurm/jobqueue.yaml`` holds the same values, commented."""

_DEPRECATED = {
    "extra": "worker-extra-args",
    "env-extra": "job-script-prologue",
    "job-extra": "job-extra-directives",
    "header-skip": "job-directives-skip",
    "project": "account",
}
_LOOPBACK_INTERFACES = frozenset({"lo", "lo0"})


def _canonical_key(key: str, source: str) -> str:
    name = str(key).replace("_", "-")
    if name in _DEPRECATED:
        msg = f"{source}: {key!r} is deprecated in dask-jobqueue; use {_DEPRECATED[name]!r}"
        raise ValueError(msg)
    if name not in SETTINGS_KEYS:
        msg = f"{source}: unknown SLURM setting {key!r}; allowed: {', '.join(SETTINGS_KEYS)}"
        raise ValueError(msg)
    return name


def merge_settings(*layers: Mapping[str, Any], source: str = "overrides") -> dict[str, Any]:
    """Merge settings layers, later ones winning; ``scheduler-options`` merges key by key.

    Keys may be spelt with dashes (YAML, dask config) or underscores (Python keywords). A layer
    that sets ``interface`` without ``scheduler-options`` puts the scheduler on that interface too
    (it drops an earlier scheduler ``host``), as dask-jobqueue does for a single settings source.

    Examples
    --------
    >>> merge_settings({"cores": 1, "scheduler-options": {"host": "127.0.0.1"}},
    ...                {"cores": 4, "scheduler_options": {"dashboard_address": ":8787"}})
    {'cores': 4, 'scheduler-options': {'host': '127.0.0.1', 'dashboard_address': ':8787'}}
    >>> merge_settings({"scheduler-options": {"host": "127.0.0.1"}}, {"interface": "ib0"})
    {'scheduler-options': {}, 'interface': 'ib0'}
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        names = {_canonical_key(key, source) for key in layer}
        if "interface" in names and "scheduler-options" not in names:
            # dask-jobqueue's rule: a scheduler without host or interface of its own listens on
            # the workers' interface, so an interface given alone moves the scheduler there too
            options = merged.get("scheduler-options", {})
            merged["scheduler-options"] = {
                k: v for k, v in options.items() if k not in ("host", "interface")
            }
        for key, value in layer.items():
            name = _canonical_key(key, source)
            if name == "scheduler-options":
                if value is None:
                    value = {}
                if not isinstance(value, Mapping):
                    msg = f"{source}: scheduler-options must be a mapping, e.g. {{interface: ib0}}"
                    raise ValueError(msg)
                merged[name] = {**merged.get(name, {}), **value}
            else:
                merged[name] = value
    return merged


def read_settings(path: Path | str) -> dict[str, Any]:
    """The ``jobqueue: slurm:`` mapping of a dask-jobqueue YAML file, keys checked.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When it is not YAML, lacks ``jobqueue: slurm:``, or names a key farm does not know.
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        msg = f"SLURM settings file {file} does not exist; see deploy/slurm/jobqueue.yaml for the format"
        raise FileNotFoundError(msg)
    try:
        document = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        from farm.inputfiles import yaml_problem

        msg = f"{file} is not valid YAML: {yaml_problem(exc)} (its text is not shown)"
        raise ValueError(msg) from None
    section = document.get("jobqueue", {}).get("slurm") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        msg = f"{file}: expected a mapping under 'jobqueue: slurm:' (the dask-jobqueue layout, see deploy/slurm/jobqueue.yaml)"
        raise ValueError(msg)
    return merge_settings(section, source=str(file))


def scheduler_on_loopback(settings: Mapping[str, Any]) -> bool:
    """Whether the scheduler these settings start listens on loopback only.

    Examples
    --------
    >>> scheduler_on_loopback({"scheduler-options": {"host": "127.0.0.1"}})
    True
    >>> scheduler_on_loopback({"scheduler-options": {"interface": "ib0"}})
    False
    """
    options = settings.get("scheduler-options") or {}
    host = options.get("host")
    if host is not None:
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(str(host).strip("[]")).is_loopback
        except ValueError:
            return False
    interface = options.get("interface") or settings.get("interface")
    return interface in _LOOPBACK_INTERFACES


def check_scheduler_reachable(
    settings: Mapping[str, Any], node_hosts: Iterable[str], this_host: str
) -> None:
    """Refuse a loopback scheduler when workers may start on another host.

    Parameters
    ----------
    settings
        Merged settings (see :func:`merge_settings`).
    node_hosts
        Host names of the nodes the jobs may run on (``sinfo -N -o %n``).
    this_host
        This machine's host name; compared by its first label (``node07.cluster`` = ``node07``).

    Raises
    ------
    ValueError
        Naming the other nodes and the setting to change.
    """
    if not scheduler_on_loopback(settings):
        return
    me = this_host.split(".")[0]
    others = sorted({h for h in node_hosts if h.split(".")[0] != me})
    if others:
        msg = (
            f"the dask scheduler would listen on loopback only, but jobs in partition "
            f"{settings.get('queue') or '(default)'} may start on {', '.join(others[:5])}"
            f"{' ...' if len(others) > 5 else ''}; set scheduler-options to the cluster network in "
            "your settings file, e.g. `scheduler-options: {interface: ib0}` (see deploy/slurm/README.md)"
        )
        raise ValueError(msg)


def _partition_hosts(queue: str | None) -> list[str] | None:
    """Host names of the nodes of a partition (all nodes for ``None``); ``None`` if sinfo fails."""
    command = ["sinfo", "--noheader", "--Node", "--format=%n"]
    if queue:
        command.append(f"--partition={queue}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.split()


def cluster_kwargs(settings: Mapping[str, Any], *, dashboard: bool = True) -> dict[str, Any]:
    """Keyword arguments of ``dask_jobqueue.SLURMCluster`` for merged settings.

    ``name`` becomes ``job_name`` (the job's name; ``name`` is the cluster's in dask-jobqueue),
    ``python: null`` becomes this interpreter, ``~`` in the log directory is expanded here (sbatch
    does not expand it), and ``dashboard=False`` turns the scheduler's dashboard off. With the
    scheduler on loopback the workers listen on loopback too (``--host 127.0.0.1``; dask's default
    is every interface).

    Examples
    --------
    >>> kw = cluster_kwargs({"name": "w", "cores": 2, "log-directory": None})
    >>> kw["job_name"], kw["cores"], kw["log_directory"], kw["python"] == sys.executable
    ('w', 2, None, True)
    """
    kwargs: dict[str, Any] = {}
    for key, value in settings.items():
        kwargs["job_name" if key == "name" else key.replace("-", "_")] = value
    if kwargs.get("python") is None:
        kwargs["python"] = sys.executable
    if kwargs.get("log_directory"):
        kwargs["log_directory"] = str(Path(kwargs["log_directory"]).expanduser())
    if scheduler_on_loopback(settings) and not settings.get("interface"):
        # dask workers listen on every interface unless told otherwise; keep them on loopback too
        extra = list(kwargs.get("worker_extra_args") or [])
        if "--host" not in extra:
            extra += ["--host", "127.0.0.1"]
        if "--dashboard-address" not in extra and "--no-dashboard" not in extra:
            extra += ["--dashboard-address", "127.0.0.1:0"]
        kwargs["worker_extra_args"] = extra
    scheduler_options = dict(kwargs.get("scheduler_options") or {})
    if not dashboard:
        scheduler_options.pop("dashboard_address", None)
        scheduler_options["dashboard"] = False
    kwargs["scheduler_options"] = scheduler_options
    return kwargs


def _settings_for(options: Any) -> dict[str, Any]:
    layers: list[Mapping[str, Any]] = [DEFAULTS]
    if DEPLOY_SETTINGS.is_file():
        layers.append(read_settings(DEPLOY_SETTINGS))
    if options.settings is not None:
        layers.append(read_settings(options.settings))
    layers.append(merge_settings(options.overrides or {}, source="ClusterOptions.overrides"))
    return merge_settings(*layers)


def _preflight(job_script: str) -> None:
    """``sbatch --test-only``: SLURM validates the job (partition, memory, time) without running it."""
    done = subprocess.run(
        ["sbatch", "--test-only"],
        input=job_script,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr + done.stdout).split("\n")
        reason = "; ".join(line.strip() for line in lines if line.strip())
        reason = reason or f"exit status {done.returncode}"
        msg = (
            f"SLURM refuses the worker job: {reason}; fix the SLURM settings (queue, memory, "
            "walltime, account) in the file given with --cluster-settings or deploy/slurm/jobqueue.yaml"
        )
        raise ValueError(msg)


def slurm_cluster(options: Any, security: Any = None) -> Any:
    """A ``dask_jobqueue.SLURMCluster`` scaled to ``options.n_workers`` workers.

    Parameters
    ----------
    options
        :class:`farm.cluster.ClusterOptions`; uses ``n_workers``, ``settings``, ``overrides`` and
        ``dashboard``.
    security
        A ``distributed.Security`` for TLS, or ``None``. Its certificate files must be readable at
        the same paths on the compute nodes (a shared file system).

    Returns
    -------
    dask_jobqueue.SLURMCluster
        Already asked for the workers; ``Client(cluster).wait_for_workers(n)`` waits for the jobs
        to start. Closing it cancels the jobs (``scancel``).

    Raises
    ------
    ImportError
        When dask-jobqueue is not installed.
    FileNotFoundError
        When ``sbatch`` is not on PATH or the settings file is missing.
    ValueError
        For unknown settings, a loopback scheduler with workers on other hosts, or a job SLURM
        refuses (checked with ``sbatch --test-only`` before anything is submitted).
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        msg = "--cluster slurm needs dask-jobqueue: pip install 'farm[slurm]'"
        raise ImportError(msg) from exc
    if shutil.which("sbatch") is None:
        msg = (
            "sbatch is not on PATH: run farm on a SLURM login node, or start a single-node SLURM "
            "here with `sudo deploy/slurm/local-slurm.sh start`"
        )
        raise FileNotFoundError(msg)
    settings = _settings_for(options)
    if scheduler_on_loopback(settings):
        hosts = _partition_hosts(settings.get("queue"))
        if hosts is not None:
            check_scheduler_reachable(settings, hosts, socket.gethostname())
    kwargs = cluster_kwargs(settings, dashboard=options.dashboard)
    if security is not None:
        kwargs["security"] = security
    cluster = SLURMCluster(**kwargs)
    try:
        _preflight(cluster.job_script())
        cluster.scale(options.n_workers)
    except BaseException:
        cluster.close()
        raise
    return cluster
