"""TLS material for `vic-machine create`, decided as VIC decides it (generate, reuse, --tls-ca, --no-tlsverify)."""
from __future__ import annotations

import ipaddress
import ssl
import stat

import pytest
from cryptography import x509

from vic_ref.machine import certs


def load(data: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data)


def collect():
    lines = []
    return lines, lambda level, text: lines.append((level, text))


def test_default_generates_a_ca_a_server_and_a_client_certificate(tmp_path):
    lines, log = collect()
    setup = certs.prepare("vch1", cert_path=tmp_path / "vch1", log=log)
    folder = tmp_path / "vch1"
    assert setup.enabled and setup.verify_clients
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "cert.pem", "key.pem"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ca-key.pem", "server-key.pem", "key.pem"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert setup.ca_certs == (folder / "ca.pem").read_bytes()
    assert setup.host_cert == (folder / "server-cert.pem").read_bytes()
    ca, server, client = load(setup.ca_certs), load(setup.host_cert), load((folder / "cert.pem").read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert certs.client_cert_issued_by(folder / "cert.pem", setup.ca_certs)
    assert ("info", f"Generating CA certificate/key pair - private key in {folder / 'ca-key.pem'}") in lines
    # the docker CLI's view: the client context made from the files loads and trusts the server's chain
    assert isinstance(setup.client_ssl_context(), ssl.SSLContext)


def test_a_second_create_reuses_the_folder(tmp_path):
    first = certs.prepare("vch1", cert_path=tmp_path / "c")
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()}
    lines, log = collect()
    second = certs.prepare("vch1", cert_path=tmp_path / "c", log=log)
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir()} == before
    assert (second.host_cert, second.ca_certs) == (first.host_cert, first.ca_certs)
    assert second.verify_clients and second.client_key == tmp_path / "c" / "key.pem"
    assert any("Loaded server certificate" in text for _, text in lines)
    assert not second.generated


def test_a_folder_with_other_files_is_never_overwritten(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    with pytest.raises(certs.CertificateError, match="Specified directory to store certificates is not empty"):
        certs.prepare("vch1", cert_path=tmp_path / "c")
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["notes.txt"]


def test_tls_ca_verifies_clients_against_the_given_cas_only(tmp_path):
    other = certs.prepare("other", cert_path=tmp_path / "other")  # some other CA and its client certificate
    lines, log = collect()
    setup = certs.prepare("vch2", cert_path=tmp_path / "vch2", ca_files=[str(tmp_path / "other" / "ca.pem")],
                          log=log)
    assert setup.verify_clients and setup.ca_certs.strip() == other.ca_certs.strip()
    # no CA of its own: only a self-signed server certificate is generated
    assert sorted(p.name for p in (tmp_path / "vch2").iterdir()) == ["server-cert.pem", "server-key.pem"]
    server = load(setup.host_cert)
    assert server.issuer == server.subject
    assert setup.client_key is None and setup.client_ssl_context() is None
    assert ("info", f"Loaded CA from {tmp_path / 'other' / 'ca.pem'}") in lines


def test_unreadable_ca_file_is_vics_error(tmp_path):
    with pytest.raises(certs.CertificateError, match="Failed to load authority from file .*missing.pem"):
        certs.prepare("v", cert_path=tmp_path / "v", ca_files=[str(tmp_path / "missing.pem")])
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(certs.CertificateError, match="Failed to load authority"):
        certs.prepare("v", cert_path=tmp_path / "v", ca_files=[str(tmp_path / "junk.pem")])


def test_no_tlsverify_and_no_tls(tmp_path):
    lines, log = collect()
    setup = certs.prepare("v", cert_path=tmp_path / "v", no_tlsverify=True, log=log)
    assert setup.enabled and not setup.verify_clients and setup.ca_certs == b"" and setup.host_cert
    assert ("warn", "Configuring without TLS verify - certificate-based authentication disabled") in lines
    lines, log = collect()
    plain = certs.prepare("w", cert_path=tmp_path / "w", no_tls=True, log=log)
    assert not plain.enabled and plain.host_cert == b"" and not (tmp_path / "w").exists()
    assert ("warn", "Configuring without TLS - all communications will be insecure") in lines


def test_explicit_server_certificate(tmp_path):
    made = certs.prepare("v", cert_path=tmp_path / "made", no_tlsverify=True)
    setup = certs.prepare("x", cert_path=tmp_path / "x", server_cert=str(tmp_path / "made" / "server-cert.pem"),
                          server_key=str(tmp_path / "made" / "server-key.pem"))
    assert setup.host_cert == made.host_cert and setup.verify_clients  # a CA and client cert generated beside it
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["ca-key.pem", "ca.pem", "cert.pem", "key.pem"]
    with pytest.raises(certs.CertificateError, match="key and cert should be specified at the same time"):
        certs.prepare("y", server_cert=str(tmp_path / "made" / "server-cert.pem"))
    other = certs.prepare("o", cert_path=tmp_path / "o", no_tlsverify=True)
    (tmp_path / "o" / "server-key.pem").write_bytes((tmp_path / "made" / "server-key.pem").read_bytes())
    with pytest.raises(certs.CertificateError, match="Failed to load certificate: the private key does not match"):
        certs.prepare("o", cert_path=tmp_path / "o")
    assert other.host_cert
