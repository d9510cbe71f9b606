"""HTTP(S) front of the sim: POST /sdk (SOAP), GET /sdk/vimServiceVersions.xml, /folder (files), /_sim (control).

Translation only: every request is handed to the Simulator; no state lives here.
"""
from __future__ import annotations

import datetime
import email.utils
import ipaddress
import logging
import os
import ssl
import threading
import time
from http import HTTPStatus
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
MAX_LINE = 65536
MAX_HEADERS = 100


class Headers(dict):
    """Request headers by lower-cased name (the first of repeated ones wins, as email.message.Message.get does).

    http.server parses headers with the email package, ~0.1 ms a request: a third of a CurrentTime round trip."""

    def get(self, name, default=None):
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name):
        return dict.get(self, name.lower())

    def __contains__(self, name):
        return dict.__contains__(self, name.lower())


class _HeaderError(Exception):
    pass


def read_headers(rfile) -> Headers:
    headers = Headers()
    count = 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise _HeaderError("Line too long")
        if line in (b"\r\n", b"\n", b""):
            return headers
        count += 1
        if count > MAX_HEADERS:
            raise _HeaderError("Too many headers")
        name, sep, value = line.decode("iso-8859-1").partition(":")
        if not sep:
            continue  # not a header line; the email parser drops these as defects too
        name = name.strip().lower()
        if name not in headers:
            dict.__setitem__(headers, name, value.strip())


class _Clock:
    """The Date header's text, made once a second rather than once a response."""

    def __init__(self):
        self.second = -1
        self.text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self.second:
            self.text = email.utils.formatdate(second, usegmt=True)
            self.second = second
        return self.text


_clock = _Clock()


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

    def date_time_string(self, timestamp=None):
        return _clock.now() if timestamp is None else super().date_time_string(timestamp)

    def _send(self, status: int, body: bytes, content_type: str = "text/xml; charset=utf-8",
              headers: dict | None = None):
        """The whole response in one write: a header write and a body write would cost two sends per call."""
        self.log_request(status, len(body))
        phrase = _PHRASES.get(status, "")
        head = [f"HTTP/1.1 {status} {phrase}\r\nServer: vsphere_sim\r\nDate: {_clock.now()}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"]
        for key, value in (headers or {}).items():
            head.append(f"{key}: {value}\r\n")
            if key.lower() == "connection" and value.lower() == "close":
                self.close_connection = True
        head.append("\r\n")
        if self.request_version == "HTTP/0.9":  # no status line, no headers (as http.server)
            head = []
        data = "".join(head).encode("latin-1", "strict")
        self.wfile.write(data if self.command == "HEAD" else data + body)

    def parse_request(self):
        """http.server's checks of the request line, Connection and Expect, with a lighter header parser."""
        self.command = None
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                numbers = version.split("/", 1)[1].split(".")
                if len(numbers) != 2 or not all(n.isdigit() and len(n) <= 10 for n in numbers):
                    raise ValueError
                version_number = int(numbers[0]), int(numbers[1])
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if version_number >= (1, 1):
                self.close_connection = False
            if version_number >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({version})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        self.command, self.path = command, path
        try:
            self.headers = read_headers(self.rfile)
        except _HeaderError as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, str(err))
            return False
        connection = self.headers.get("connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if self.headers.get("expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            if not self.handle_expect_100():
                return False
        return True

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
        if method == "POST" and self.path == "/sdk":  # every vim25 call: skip the URL split
            self._soap()
            return
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
        self.sim.dispatcher.handle(body, self.headers.get("SOAPAction"), self.headers.get("Cookie"),
                                   send=self._send_dispatched)

    def _send_dispatched(self, result):
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


_PHRASES = {status.value: status.phrase for status in HTTPStatus}


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
