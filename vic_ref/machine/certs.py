"""TLS material for `vic-machine create`, decided as VIC's `cmd/vic-machine/common/certificate.go` decides it.

- `--no-tls`: none; the Docker API is plain HTTP.
- Otherwise the server certificate is loaded (`--tls-server-cert`/`--tls-server-key`, or `server-cert.pem` and
  `server-key.pem` in the certificate folder) or generated.
- Client verification (the default) needs CAs: `--tls-ca` files, else `ca.pem` in the certificate folder, else a CA
  is generated together with a client certificate (`cert.pem`, `key.pem`), so `DOCKER_CERT_PATH=<folder>` works.
- `--no-tlsverify`: server TLS only (the generated server certificate is then self-signed).
The certificate folder defaults to `./<vch name>`; generating into a folder that already holds files fails with
VIC's text, so certificates are never overwritten.

Keys are ECDSA P-256 (VIC uses RSA 2048; the docker CLI takes both, and EC keys are generated in milliseconds).
"""
from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server-cert.pem"
SERVER_KEY = "server-key.pem"
CLIENT_CERT = "cert.pem"
CLIENT_KEY = "key.pem"
DEFAULT_HOSTS = ("127.0.0.1", "localhost")
VALID_DAYS = 3650


class CertificateError(errors.InvalidArgument):
    """The TLS options can't be satisfied (unreadable files, a folder that isn't empty, ...)."""


@dataclass
class TLSSetup:
    """What create puts in the VCH config (`host_cert`, `host_key`, `ca_certs`) and tells the user."""
    enabled: bool = False
    verify_clients: bool = False
    cert_path: Path | None = None  # where certificates were loaded from or written to
    host_cert: bytes = b""
    host_key: bytes = b""
    ca_certs: bytes = b""  # PEM, the CAs whose client certificates the VCH accepts
    ca_file: Path | None = None  # ca.pem in cert_path, when the client can verify the server with it
    client_cert: Path | None = None  # a client certificate the CAs accept, when we have one
    client_key: Path | None = None
    generated: list[str] = field(default_factory=list)  # the files written

    def client_ssl_context(self):
        """An SSL context presenting our client certificate and verifying the server with ca.pem; None without."""
        import ssl
        if not (self.client_cert and self.client_key and self.ca_file):
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def prepare(name: str, *, cert_path: str | Path | None = None, no_tls: bool = False, no_tlsverify: bool = False,
            ca_files: list[str] | tuple[str, ...] = (), server_cert: str | None = None, server_key: str | None = None,
            cname: str | None = None, hosts: tuple[str, ...] = DEFAULT_HOSTS, force: bool = False,
            log: Callable[[str, str], None] = lambda level, text: None) -> TLSSetup:
    """Load or generate the VCH's TLS material; `log(level, text)` hears what VIC would log ("info"/"warn")."""
    path = Path(cert_path) if cert_path else Path(name)
    if no_tls:
        log("warn", "Configuring without TLS - all communications will be insecure")
        return TLSSetup(enabled=False, cert_path=path)
    if bool(server_cert) != bool(server_key):
        raise CertificateError("key and cert should be specified at the same time")
    setup = TLSSetup(enabled=True, cert_path=path)

    cas = b""
    for ca_file in ca_files:
        try:
            data = Path(ca_file).read_bytes()
            _load_certs(data)
        except (OSError, ValueError) as err:
            raise CertificateError(f"Failed to load authority from file {ca_file}: {_reason(err)}") from err
        cas += data if data.endswith(b"\n") else data + b"\n"
        log("info", f"Loaded CA from {ca_file}")

    try:
        keypair = _load_server(path, server_cert, server_key, cname, log)
    except CertificateError:
        if not force:
            raise
        log("warn", "Ignoring error loading certificates due to --force")
        keypair, cas = None, b""
    if keypair is not None:
        setup.host_cert, setup.host_key = keypair
        if not no_tlsverify and not cas and (path / CA_CERT).is_file():
            cas = (path / CA_CERT).read_bytes()
            setup.ca_file = path / CA_CERT
            log("info", f"Loaded CA with default name from certificate path {path}")
            if _client_pair_ok(path, cas):
                setup.client_cert, setup.client_key = path / CLIENT_CERT, path / CLIENT_KEY
                log("info", f"Loaded client certificate with default name from certificate path {path}")
            else:
                log("warn", "Unable to load client certificate - validation of API endpoint will be best effort only")

    need_server = keypair is None
    need_client = not no_tlsverify and not cas
    if need_server or need_client:
        _generate(setup, path, hosts=_hosts(hosts, cname), name=name, server=need_server, client=need_client,
                  log=log)
        if need_client:
            cas = setup.ca_certs
    if no_tlsverify or not cas:
        log("warn", "Configuring without TLS verify - certificate-based authentication disabled")
        setup.ca_certs = b""
        setup.verify_clients = False
        return setup
    setup.ca_certs = cas
    setup.verify_clients = True
    return setup


def _reason(err: Exception) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


def _hosts(hosts: tuple[str, ...], cname: str | None) -> tuple[str, ...]:
    return tuple(dict.fromkeys(([cname] if cname else []) + list(hosts)))


def _load_certs(data: bytes) -> list:
    from cryptography import x509
    certs = x509.load_pem_x509_certificates(data)
    if not certs:
        raise ValueError("no PEM certificate in it")
    return certs


def _load_server(path: Path, server_cert: str | None, server_key: str | None, cname: str | None,
                 log: Callable[[str, str], None]) -> tuple[bytes, bytes] | None:
    """(cert, key) PEM of an existing server certificate, or None when there is none to load."""
    explicit = bool(server_cert and server_key)
    cert_file = Path(server_cert) if explicit else path / SERVER_CERT
    key_file = Path(server_key) if explicit else path / SERVER_KEY
    if not explicit and not (cert_file.exists() or key_file.exists()):
        return None
    try:
        cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
        from cryptography.hazmat.primitives import serialization
        [leaf, *_] = _load_certs(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if key.public_key().public_numbers() != leaf.public_key().public_numbers():
            raise ValueError("the private key does not match the certificate")
    except (OSError, ValueError, TypeError) as err:
        raise CertificateError(f"Failed to load certificate: {_reason(err)}") from err
    if cname:
        from cryptography.x509.oid import NameOID
        names = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if cname not in names:
            raise CertificateError(f"cname option doesn't match existing server certificate in certificate path "
                                   f"{path}")
    log("info", f"Loaded server certificate {cert_file}")
    return cert_pem, key_pem


def _client_pair_ok(path: Path, cas: bytes) -> bool:
    try:
        return client_cert_issued_by(path / CLIENT_CERT, cas) and (path / CLIENT_KEY).is_file()
    except OSError:
        return False


def client_cert_issued_by(cert_file: Path, cas: bytes) -> bool:
    """Whether the certificate in `cert_file` was signed by one of the CAs in `cas` (PEM)."""
    try:
        [leaf, *_] = _load_certs(Path(cert_file).read_bytes())
        authorities = _load_certs(cas)
    except (OSError, ValueError):
        return False
    for ca in authorities:
        try:
            leaf.verify_directly_issued_by(ca)
            return True
        except Exception:  # InvalidSignature, or a key type that can't have signed it: not this CA
            continue
    return False


# -- generation ------------------------------------------------------------------------------------------------------
def _generate(setup: TLSSetup, path: Path, *, hosts: tuple[str, ...], name: str, server: bool, client: bool,
              log: Callable[[str, str], None]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if path.is_dir() and any(path.iterdir()):
        raise CertificateError(f"Specified directory to store certificates is not empty. Specify a new path in "
                               f"which to store generated certificates using --tls-cert-path or remove the contents "
                               f"of \"{path}\" and run vic-machine again.")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise CertificateError(f"Unable to make directory \"{path}\" to hold certificates (set via "
                               f"--tls-cert-path): {_reason(err)}") from err
    files: dict[str, bytes] = {}
    if server and not client:
        log("info", f"Generating self-signed certificate/key pair - private key in {path / SERVER_KEY}")
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(hosts[0], name)
        cert = _issue(subject, key, subject, key, ca=False, usage=[ExtendedKeyUsageOID.SERVER_AUTH],
                      sans=_sans(hosts))
        files[SERVER_CERT], files[SERVER_KEY] = _pem(cert), _pem_key(key)
    else:
        log("info", f"Generating CA certificate/key pair - private key in {path / CA_KEY}")
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = _name(f"{name} CA", name)
        ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
        files[CA_CERT], files[CA_KEY] = _pem(ca), _pem_key(ca_key)
        if server:
            log("info", f"Generating server certificate/key pair - private key in {path / SERVER_KEY}")
            key = ec.generate_private_key(ec.SECP256R1())
            cert = _issue(_name(hosts[0], name), key, ca_name, ca_key, ca=False,
                          usage=[ExtendedKeyUsageOID.SERVER_AUTH], sans=_sans(hosts))
            files[SERVER_CERT], files[SERVER_KEY] = _pem(cert), _pem_key(key)
        log("info", f"Generating client certificate/key pair - private key in {path / CLIENT_KEY}")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} client")]), key, ca_name, ca_key,
                      ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
        files[CLIENT_CERT], files[CLIENT_KEY] = _pem(cert), _pem_key(key)
    for file_name, data in files.items():
        target = path / file_name
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if "key" in file_name else 0o644)
        with open(fd, "wb") as f:
            f.write(data)
        setup.generated.append(file_name)
    if SERVER_CERT in files:
        setup.host_cert, setup.host_key = files[SERVER_CERT], files[SERVER_KEY]
    if CA_CERT in files:
        setup.ca_certs = files[CA_CERT]
        setup.ca_file = path / CA_CERT
        setup.client_cert, setup.client_key = path / CLIENT_CERT, path / CLIENT_KEY


def _name(common_name: str, organization: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])


def _sans(hosts: tuple[str, ...]) -> list:
    from cryptography import x509
    sans = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return sans


def _issue(subject, key, issuer_name, issuer_key, *, ca: bool, usage=None, sans=None):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False), critical=True)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


__all__ = ["TLSSetup", "CertificateError", "prepare", "client_cert_issued_by", "CA_CERT", "CLIENT_CERT",
           "CLIENT_KEY", "SERVER_CERT", "SERVER_KEY"]
