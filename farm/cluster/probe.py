"""Why a dask scheduler could not be reached, in words, with the fix.

dask reports a plain ``tcp://`` client talking to a TLS scheduler as "Connection reset by peer"
(the scheduler drops a connection that does not start a TLS handshake), and a ``tls://``
address without certificates as a ``TypeError`` about an ``ssl_context``. After a failed
connection :func:`explain_connect_failure` probes the port once (a TLS handshake that trusts
any certificate, 3 s at most: nothing is sent but a ClientHello) and says which it is.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

__all__ = ["SchedulerConnectError", "explain_connect_failure", "speaks_tls", "split_address"]

PROBE_TIMEOUT_S = 3.0


class SchedulerConnectError(ConnectionError):
    """The scheduler could not be reached; the message says why and what to do."""


def split_address(address: str) -> tuple[str, str, int] | None:
    """(protocol, host, port) of ``tcp://host:port`` / ``tls://[::1]:port``; None otherwise."""
    protocol, sep, rest = address.partition("://")
    if not sep:
        protocol, rest = "tcp", address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return protocol, host.strip("[]"), int(port)


def speaks_tls(host: str, port: int, timeout_s: float = PROBE_TIMEOUT_S) -> bool | None:
    """Whether the server at host:port answers a TLS ClientHello (None: nothing listens)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except OSError:
        return None
    try:
        # the TLS socket takes over the connection: closed by its ``with`` whatever happens
        with context.wrap_socket(raw, do_handshake_on_connect=False) as tls:
            tls.settimeout(timeout_s)
            tls.do_handshake()
        return True
    except ssl.SSLError as err:
        # an alert from the server (it wants a client certificate, or no common cipher) is TLS;
        # a record that is not TLS, or a closed connection, is not
        return "ALERT" in str(getattr(err, "reason", "") or err).upper()
    except OSError:
        return False
    finally:
        raw.close()


def explain_connect_failure(
    address: str, err: BaseException, *, tls_dir: Path | None, source: str = "--scheduler"
) -> SchedulerConnectError:
    """The error to raise after ``Client(address)`` failed with ``err``."""
    parts = split_address(address)
    if parts is None:
        msg = (
            f"{source} {address!r} is not a scheduler address; give tcp://HOST:PORT, or "
            "tls://HOST:PORT with --tls-dir"
        )
        return SchedulerConnectError(msg)
    protocol, host, port = parts
    if protocol == "tls" and tls_dir is None:
        msg = (
            f"{source} {address}: a tls:// scheduler needs the cluster's certificates; add "
            "--tls-dir DIR (the folder `farm cluster certs` wrote: ca.pem, cert.pem, key.pem)"
        )
        return SchedulerConnectError(msg)
    tls = speaks_tls(host, port)
    plain = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    if tls is None:
        msg = (
            f"{source} {address}: nothing accepts connections at {plain} (is the scheduler "
            f"running? `dask scheduler` prints its address); {type(err).__name__}: {err}"
        )
    elif tls and protocol != "tls":
        msg = (
            f"{source} {address}: the scheduler at {plain} speaks TLS, but {protocol}:// asks "
            f"for plain TCP, so it closed the connection; connect with --scheduler "
            f"tls://{plain} --tls-dir DIR (the folder `farm cluster certs` wrote for this "
            "cluster: ca.pem, cert.pem, key.pem)"
        )
    elif not tls and protocol == "tls":
        msg = (
            f"{source} {address}: the scheduler at {plain} does not speak TLS; connect with "
            f"tcp://{plain} and without --tls-dir, or start the scheduler with TLS"
        )
    elif tls_dir is not None and protocol == "tls":
        msg = (
            f"{source} {address}: the TLS handshake with {plain} failed ({type(err).__name__}: "
            f"{err}); check that {tls_dir} holds certificates of the CA the scheduler trusts "
            "(`farm cluster certs` made for this cluster) and that they have not expired"
        )
    else:
        msg = f"{source} {address}: cannot connect ({type(err).__name__}: {err})"
    return SchedulerConnectError(msg)
