"""HTTP(S) front of the sim: POST /sdk (SOAP), GET /sdk/vimServiceVersions.xml, /folder (files), /_sim (control).

Translation only: every request is handed to the Simulator; no state lives here.
"""
from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger("vsphere_sim.server")

VERSIONS_XML = b"""<?xml version="1.0" encoding="UTF-8" ?>
<namespaces version="1.0">
 <namespace>
  <name>urn:vim25</name>
  <version>8.0.3.0</version>
  <priorVersions>
   <version>8.0.2.0</version>
   <version>8.0.1.0</version>
   <version>8.0.0.0</version>
   <version>7.0.3.0</version>
   <version>7.0.2.0</version>
   <version>7.0.1.0</version>
   <version>7.0.0.0</version>
   <version>6.7.3</version>
   <version>6.7</version>
   <version>6.5</version>
   <version>6.0</version>
  </priorVersions>
 </namespace>
</namespaces>
"""

MAX_BODY = 64 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without this every call waits on Nagle + delayed ACK (~40 ms) for the split header/body writes.
    disable_nagle_algorithm = True
    server_version = "vsphere_sim"
    sys_version = ""
    # A stalled client must not hold a server thread forever (WaitForUpdatesEx waits at most a few minutes).
    timeout = 900

    @property
    def sim(self):
        return self.server.sim

    def log_message(self, fmt, *args):
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8",
              headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            size = int(length or 0)
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY:
            self._send(413, b"request body too large or malformed length\n", "text/plain")
            self.close_connection = True
            return None
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes | None:
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                self._send(400, b"malformed chunked body\n", "text/plain")
                self.close_connection = True
                return None
            if size == 0:
                self.rfile.readline(1024)
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self._send(413, b"request body too large\n", "text/plain")
                self.close_connection = True
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # -- routing ------------------------------------------------------------------------------------------------
    def do_POST(self):
        self._route("POST")

    def do_GET(self):
        self._route("GET")

    def do_HEAD(self):
        self._route("HEAD")

    def do_PUT(self):
        self._route("PUT")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, method: str):
        """POST /sdk: SOAP; GET /sdk/vimServiceVersions.xml; /folder: datastore files (GET, HEAD, PUT, DELETE);
        /_sim/: the control API (HEAD answered as GET); anything else 404."""
        path = urlsplit(self.path).path
        if method == "POST" and path.rstrip("/") == "/sdk":
            self._soap()
        elif method in ("GET", "HEAD") and path in ("/sdk/vimServiceVersions.xml", "/sdk/vimServiceVersions.xml/"):
            self._send(200, VERSIONS_XML)
        elif method != "POST" and path.startswith("/folder"):
            self._folder(method)
        elif path.startswith("/_sim/"):
            self._control("GET" if method == "HEAD" else method)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _soap(self):
        body = self._read_body()
        if body is None:
            return
        result = self.sim.dispatcher.handle(body, self.headers.get("SOAPAction"), self.headers.get("Cookie"))
        headers = {"Set-Cookie": result.set_cookie} if result.set_cookie else None
        self._send(result.status, result.body, headers=headers)

    # -- /folder: datastore files -------------------------------------------------------------------------------
    def _folder(self, method: str):
        from .datastore_http import handle_folder_request
        handle_folder_request(self, method)

    # -- /_sim: control API -------------------------------------------------------------------------------------
    def _control(self, method: str):
        from .control import handle_control_request
        handle_control_request(self, method)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, sim, ssl_context):
        self.sim = sim
        self.ssl_context = ssl_context
        super().__init__(address, _Handler)

    def get_request(self):
        conn, addr = super().get_request()
        if self.ssl_context is not None:
            conn = self.ssl_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request, client_address):
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


def make_self_signed_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host` (plus localhost and 127.0.0.1), generated at start."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost")]
    addresses = {"127.0.0.1"}
    try:
        addresses.add(str(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vsphere_sim")])
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(
                names + [x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses)]), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "sim-cert.pem", directory / "sim-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return cert_path, key_path


class SimServer:
    def __init__(self, sim, listen: str, tls: bool):
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        self.sim = sim
        self.tls = tls
        context = None
        if tls:
            cert, key = make_self_signed_cert(sim.workdir / "tls", host)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.cert_path = cert
        self.httpd = _Server((host, int(port or 0)), sim, context)
        self.host = host
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}/sdk"

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        daemon=True, name=f"vsphere-sim-{self.port}")
        self._thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
