"""TLS for the farm's dask clusters: certificates the farm generates, and a cluster that needs them."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from distributed import Client
from distributed.comm import get_address_host_port
from typer.testing import CliRunner

from farm.cli import app
from farm.cluster import ClusterOptions, connect
from farm.cluster.security import TlsPaths, generate_certs, security_from_dir

HOSTS = ("127.0.0.1", "::1", "localhost", "node07.cluster")
CONNECT_TIMEOUT_S = 5


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def farm(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(app, list(args))


def one_line(result: Result) -> str:
    return " ".join(result.output.split())


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsPaths:
    return generate_certs(tmp_path_factory.mktemp("tls") / "certs", hosts=HOSTS, days=30)


@pytest.fixture(scope="module")
def client(tls: TlsPaths) -> Iterator[Any]:
    options = ClusterOptions(kind="local", workers=2, tls_dir=tls.cert.parent, dashboard=False)
    with connect(options) as c:
        yield c


@pytest.fixture
def scheduler_host_port(client: Any) -> tuple[str, int]:
    host, port = get_address_host_port(client.scheduler.address)
    return host, port


# --- certificates ------------------------------------------------------------------------------


def test_certificate_is_signed_by_the_ca(tls: TlsPaths) -> None:
    load_cert(tls.cert).verify_directly_issued_by(load_cert(tls.ca_cert))


@pytest.mark.parametrize(
    "name",
    [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
        x509.DNSName("localhost"),
        x509.DNSName("node07.cluster"),
    ],
    ids=str,
)
def test_certificate_verifies_as_server_for_each_host(
    tls: TlsPaths, name: x509.GeneralName
) -> None:
    # RFC 5280 path validation with the serverAuth EKU and SAN matching (cryptography's verifier)
    verifier = PolicyBuilder().store(Store([load_cert(tls.ca_cert)])).build_server_verifier(name)
    chain = verifier.verify(load_cert(tls.cert), [])
    assert chain[-1] == load_cert(tls.ca_cert)


def test_certificate_does_not_verify_for_a_host_it_was_not_issued_for(tls: TlsPaths) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([load_cert(tls.ca_cert)]))
        .build_server_verifier(x509.DNSName("elsewhere.example"))
    )
    with pytest.raises(x509.verification.VerificationError, match="subjectAltName"):
        verifier.verify(load_cert(tls.cert), [])


def test_certificate_verifies_as_client_with_every_host_as_subject(tls: TlsPaths) -> None:
    # workers and the client present the same certificate, so it needs the clientAuth EKU too
    verifier = PolicyBuilder().store(Store([load_cert(tls.ca_cert)])).build_client_verifier()
    verified = verifier.verify(load_cert(tls.cert), [])
    names = {str(getattr(n, "value", n)) for n in verified.subjects or []}
    assert names == {"127.0.0.1", "::1", "localhost", "node07.cluster"}


def test_certificates_are_valid_for_the_requested_days_from_five_minutes_ago(tls: TlsPaths) -> None:
    for path in (tls.ca_cert, tls.cert):
        cert = load_cert(path)
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert lifetime == datetime.timedelta(days=30, minutes=5)
        assert cert.not_valid_before_utc < datetime.datetime.now(datetime.UTC)


def test_private_keys_are_readable_by_the_owner_only(tls: TlsPaths) -> None:
    assert stat.S_IMODE(tls.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.ca_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(tls.cert.stat().st_mode) == 0o644
    assert not list(tls.cert.parent.glob(".*.tmp"))  # no temporary file left behind


def test_generating_into_a_directory_with_certificates_refuses_and_keeps_them(
    tls: TlsPaths,
) -> None:
    before = tls.cert.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_certs(tls.cert.parent)
    assert tls.cert.read_bytes() == before


def test_generating_with_overwrite_issues_a_new_ca(tmp_path: Path) -> None:
    first = load_cert(generate_certs(tmp_path).ca_cert)
    second = load_cert(generate_certs(tmp_path, overwrite=True).ca_cert)
    assert first.serial_number != second.serial_number


@pytest.mark.parametrize("hosts", [("",), ("two words",), ()], ids=["empty", "space", "none"])
def test_a_bad_host_list_is_refused_before_anything_is_written(
    tmp_path: Path, hosts: tuple[str, ...]
) -> None:
    with pytest.raises(ValueError, match="host"):
        generate_certs(tmp_path / "certs", hosts=hosts)
    assert not (tmp_path / "certs").exists()


def test_a_validity_of_zero_days_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive number of days"):
        generate_certs(tmp_path / "certs", days=0)
    assert not (tmp_path / "certs").exists()


# --- Security from a directory -----------------------------------------------------------------


def test_security_uses_the_one_certificate_for_every_role(tls: TlsPaths) -> None:
    sec = security_from_dir(tls.cert.parent)
    assert sec.require_encryption is True
    assert sec.tls_ca_file == str(tls.ca_cert.resolve())
    certs = {sec.tls_client_cert, sec.tls_scheduler_cert, sec.tls_worker_cert}
    keys = {sec.tls_client_key, sec.tls_scheduler_key, sec.tls_worker_key}
    assert certs == {str(tls.cert.resolve())}
    assert keys == {str(tls.key.resolve())}


def test_a_missing_key_is_named_with_the_command_that_creates_it(tmp_path: Path) -> None:
    paths = generate_certs(tmp_path)
    paths.key.unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks key\.pem.*`farm cluster certs "):
        security_from_dir(tmp_path)


def test_a_missing_directory_is_named_with_the_command_that_creates_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist.*`farm cluster certs "):
        security_from_dir(tmp_path / "nowhere")


# --- a TLS-secured LocalCluster ----------------------------------------------------------------


def test_tls_cluster_runs_a_computation(client: Any) -> None:
    assert client.submit(sum, range(1_000)).result(timeout=30) == 499_500


def test_tls_cluster_scheduler_and_workers_listen_on_tls_at_loopback(client: Any) -> None:
    workers = list(client.scheduler_info()["workers"])
    assert client.scheduler.address.startswith("tls://127.0.0.1:")
    assert len(workers) == 2
    assert all(w.startswith("tls://127.0.0.1:") for w in workers)


def test_tls_cluster_refuses_a_plain_tcp_client(scheduler_host_port: tuple[str, int]) -> None:
    host, port = scheduler_host_port
    # the scheduler resets the connection at the first unencrypted byte (CommClosedError is an OSError)
    with pytest.raises(OSError):
        Client(f"tcp://{host}:{port}", timeout=CONNECT_TIMEOUT_S, set_as_default=False)


def test_require_encryption_stops_a_client_from_using_plain_tcp(
    tls: TlsPaths, scheduler_host_port: tuple[str, int]
) -> None:
    host, port = scheduler_host_port
    with pytest.raises(RuntimeError, match="encryption required"):
        Client(
            f"tcp://{host}:{port}",
            security=security_from_dir(tls.cert.parent),
            timeout=CONNECT_TIMEOUT_S,
            set_as_default=False,
        )


def test_tls_cluster_refuses_a_client_certified_by_another_ca(client: Any, tmp_path: Path) -> None:
    generate_certs(tmp_path)
    with pytest.raises(OSError, match="certificate"):
        Client(
            client.scheduler.address,
            security=security_from_dir(tmp_path),
            timeout=CONNECT_TIMEOUT_S,
            set_as_default=False,
        )


def test_tls_cluster_refuses_a_tls_client_without_a_certificate(
    tls: TlsPaths, scheduler_host_port: tuple[str, int]
) -> None:
    host, port = scheduler_host_port
    # check_hostname stays on: the handshake itself proves the scheduler's SAN covers 127.0.0.1
    ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
    with (
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as conn,
    ):
        # TLS 1.3: the scheduler judges the client's (absent) certificate after the client's
        # side of the handshake, so its refusal arrives as an alert on the first read
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            conn.recv(1)


# --- the command line --------------------------------------------------------------------------


def test_cli_writes_certificates_for_the_given_hosts(tmp_path: Path) -> None:
    hosts = ["--host", "10.0.0.5", "--host", "node07"]
    result = farm("cluster", "certs", str(tmp_path / "tls"), *hosts, "--days", "7")
    assert result.exit_code == 0, result.output
    cert = load_cert(tmp_path / "tls" / "cert.pem")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert san.get_values_for_type(x509.DNSName) == ["node07"]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == datetime.timedelta(days=7, minutes=5)


def test_cli_refuses_to_overwrite_without_the_flag(tmp_path: Path) -> None:
    assert farm("cluster", "certs", str(tmp_path)).exit_code == 0
    before = (tmp_path / "cert.pem").read_bytes()
    result = farm("cluster", "certs", str(tmp_path))
    assert result.exit_code == 2
    assert "--overwrite" in one_line(result)
    assert (tmp_path / "cert.pem").read_bytes() == before
    assert farm("cluster", "certs", str(tmp_path), "--overwrite").exit_code == 0
    assert (tmp_path / "cert.pem").read_bytes() != before


def test_cli_help_shows_an_example() -> None:
    result = farm("cluster", "certs", "--help")
    assert result.exit_code == 0
    assert "Example: farm cluster certs" in one_line(result)
