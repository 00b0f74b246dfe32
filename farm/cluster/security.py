"""TLS for the farm's dask clusters: a private CA, one certificate for every role, and the Security.

dask uses mutual TLS: the scheduler, each worker and the client present a certificate signed by the
cluster's CA and refuse peers that do not (``ssl.CERT_REQUIRED`` on both sides). One certificate
with both the server-auth and client-auth extended key usages serves all three roles, which is how
``distributed.Security.temporary`` does it too; unlike that helper, the files here live on disk so
that workers started by SLURM or Kubernetes on other hosts can read the same ones.

Layout of a TLS directory (``farm cluster certs DIR`` writes it)::

    ca.pem       the CA certificate (public; every node needs it)
    ca-key.pem   the CA private key (mode 0600; needed only to issue more certificates)
    cert.pem     the certificate of scheduler, workers and client, signed by the CA
    key.pem      its private key (mode 0600)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

if TYPE_CHECKING:
    from distributed.security import Security

__all__ = [
    "CA_CERT_NAME",
    "CA_KEY_NAME",
    "CERT_NAME",
    "DEFAULT_HOSTS",
    "KEY_NAME",
    "TlsPaths",
    "generate_certs",
    "security_from_dir",
    "subject_alt_names",
]

CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"
CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"
DEFAULT_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")

_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644
# nodes of a cluster rarely agree on the time to the second; a certificate born "in the future"
# would be refused by a worker whose clock is behind
_CLOCK_SKEW = datetime.timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class TlsPaths:
    """The four files of a TLS directory."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def in_dir(cls, directory: Path | str) -> TlsPaths:
        d = Path(directory)
        return cls(
            ca_cert=d / CA_CERT_NAME, ca_key=d / CA_KEY_NAME, cert=d / CERT_NAME, key=d / KEY_NAME
        )

    def all(self) -> tuple[Path, ...]:
        return (self.ca_cert, self.ca_key, self.cert, self.key)


def subject_alt_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Each host as a SAN entry: an IP address where it parses as one, a DNS name otherwise.

    Examples
    --------
    >>> [type(n).__name__ for n in subject_alt_names(["127.0.0.1", "::1", "node07.cluster"])]
    ['IPAddress', 'IPAddress', 'DNSName']
    """
    names: list[x509.GeneralName] = []
    for host in hosts:
        name = host.strip()
        if not name or any(c.isspace() for c in name) or not name.isascii():
            msg = (
                f"host {host!r} is neither an IP address nor a DNS name; "
                "give an address like 10.0.0.5 or an ASCII name like node07.cluster"
            )
            raise ValueError(msg)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "farm"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_certificate(
    key: ec.EllipticCurvePrivateKey, not_before: datetime.datetime, not_after: datetime.datetime
) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name("farm dask cluster CA"))
        .issuer_name(_name("farm dask cluster CA"))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Sequence[str],
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.Certificate:
    public = key.public_key()
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(_name("farm dask cluster"))
        .issuer_name(ca.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            # one certificate for scheduler (server), workers (server and client) and client
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(subject_alt_names(hosts)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # mkstemp creates the file 0600 before a byte is written, so a key is never readable by others,
    # not even for the moment between write and chmod; os.replace makes it appear whole or not at all
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generate_certs(
    outdir: Path | str,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    days: int = 365,
    overwrite: bool = False,
) -> TlsPaths:
    """Write a self-signed CA and one certificate signed by it for scheduler, workers and client.

    Keys are ECDSA on NIST P-256 (FIPS 186-5), signatures ECDSA-SHA256. The CA is
    ``BasicConstraints(ca=True, pathlen=0)`` with ``keyCertSign, cRLSign``; the certificate is
    ``digitalSignature`` with extended key usages ``serverAuth`` and ``clientAuth`` and a
    subjectAltName for each host (RFC 5280 §4.2.1.3, §4.2.1.6, §4.2.1.12). dask does not check host
    names (it trusts a dedicated CA), but the SANs let other TLS clients verify the scheduler.

    Parameters
    ----------
    outdir
        Directory to write ``ca.pem``, ``ca-key.pem``, ``cert.pem``, ``key.pem`` into; created
        (mode 0700) if missing.
    hosts
        IP addresses and DNS names of the scheduler and workers.
    days
        Validity of both certificates, counted from five minutes ago (clock skew between nodes).
    overwrite
        Replace existing files; without it any existing one is an error.

    Returns
    -------
    TlsPaths
        The paths written. Private keys have mode 0600, certificates 0644; each file is written to
        a temporary name and renamed into place.
    """
    if isinstance(hosts, str):
        hosts = (hosts,)
    if not hosts:
        msg = "no hosts for the certificate; give at least one, e.g. 127.0.0.1"
        raise ValueError(msg)
    if days < 1:
        msg = f"days must be a positive number of days the certificates stay valid, got {days}"
        raise ValueError(msg)
    subject_alt_names(hosts)  # refuse bad host names before touching the disk
    paths = TlsPaths.in_dir(outdir)
    existing = [p.name for p in paths.all() if p.exists()]
    if existing and not overwrite:
        msg = (
            f"{Path(outdir)} already holds {', '.join(existing)}; refusing to replace them "
            "(pass overwrite=True, or --overwrite on the command line, to issue new ones)"
        )
        raise FileExistsError(msg)
    Path(outdir).mkdir(parents=True, exist_ok=True, mode=0o700)

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - _CLOCK_SKEW, now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca_certificate(ca_key, not_before, not_after)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _leaf_certificate(key, ca, ca_key, hosts, not_before, not_after)

    pem = serialization.Encoding.PEM
    # keys first: a cert.pem never appears before the key.pem that matches it
    _write_atomic(paths.ca_key, _key_pem(ca_key), _PRIVATE_MODE)
    _write_atomic(paths.key, _key_pem(key), _PRIVATE_MODE)
    _write_atomic(paths.ca_cert, ca.public_bytes(pem), _PUBLIC_MODE)
    _write_atomic(paths.cert, cert.public_bytes(pem), _PUBLIC_MODE)
    return paths


def security_from_dir(path: Path | str, *, require_encryption: bool = True) -> Security:
    """The ``distributed.Security`` of a TLS directory: the same certificate for every role.

    With ``require_encryption`` (the default) this process refuses any unencrypted (``tcp://``)
    connection; the TLS listeners it opens refuse peers without a certificate signed by the CA.
    Only ``ca.pem``, ``cert.pem`` and ``key.pem`` are needed; ``ca-key.pem`` may stay elsewhere.

    Raises
    ------
    FileNotFoundError
        When the directory or one of the three files is missing; the message names the files and
        the command that creates them.
    """
    from distributed.security import Security

    directory = Path(path)
    paths = TlsPaths.in_dir(directory)
    needed = (paths.ca_cert, paths.cert, paths.key)
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        where = "does not exist" if not directory.is_dir() else f"lacks {', '.join(missing)}"
        msg = (
            f"TLS directory {directory} {where}; create the certificates with "
            f"`farm cluster certs {directory}` or copy ca.pem, cert.pem and key.pem there"
        )
        raise FileNotFoundError(msg)
    ca, cert, key = (str(p.resolve()) for p in needed)
    return Security(
        require_encryption=require_encryption,
        tls_ca_file=ca,
        tls_client_cert=cert,
        tls_client_key=key,
        tls_scheduler_cert=cert,
        tls_scheduler_key=key,
        tls_worker_cert=cert,
        tls_worker_key=key,
    )
