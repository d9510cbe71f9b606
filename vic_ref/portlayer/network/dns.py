"""The VCH's name server: DNS over UDP and TCP on port 53 of a set of loopback addresses, answers from a resolver.

    server = NameServer(resolve)          # resolve(listen_address, qname) -> list of IPv4 strings, or None (unknown)
    server.listen({"127.42.0.1", ...})    # the addresses to serve; binds new ones, closes dropped ones
    server.close()

One thread serves every address with a selector (a VCH may have a listener per network and per linking container, and
dnslib's own server costs two threads per address); dnslib parses and builds the messages. Binding never reuses an
address: a second VCH on the same range fails with EADDRINUSE instead of silently stealing the queries (dnslib's
UDPServer sets SO_REUSEADDR; guest-feasibility.md §2).

Answers: A records for known names (TTL 5, authoritative, as dnslib sets AA); a known name without that record type
(AAAA) is NOERROR with no answer, which glibc and busybox take as "no IPv6" without retrying. Unknown single-label
names are NXDOMAIN (nobody upstream knows a container name); unknown dotted names go to the host's resolver when
`forward` is given, else REFUSED.
"""
from __future__ import annotations

import errno
import logging
import selectors
import socket
import struct
import threading
from collections.abc import Callable, Iterable

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger("vic_ref.portlayer.network.dns")

PORT = 53
TTL = 5
FORWARD_TIMEOUT = 2.0
TCP_TIMEOUT = 5.0

Resolver = Callable[[str, str], "list[str] | None"]
FORWARD = object()  # answer(): this query goes to the host's resolver


class NameServer:
    def __init__(self, resolve: Resolver, *, port: int = PORT, forward: str | None = None):
        self.resolve = resolve
        self.port = port
        self.forward = forward  # the host's resolver ("ip" or "ip:port"), for dotted names we don't know
        self._selector = selectors.DefaultSelector()
        self._sockets: dict[str, tuple[socket.socket, socket.socket]] = {}
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, ("wake", ""))
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="vch-dns", daemon=True)
        self._thread.start()

    # -- addresses ------------------------------------------------------------------------------------------------
    @property
    def addresses(self) -> set[str]:
        with self._lock:
            return set(self._sockets)

    def bind(self, address: str) -> None:
        """Serve `address` (idempotent); OSError (EADDRINUSE) if another server holds its port 53."""
        with self._lock:
            if self._closed or address in self._sockets:
                return
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind((address, self.port))
                # SO_REUSEADDR on TCP only lets us rebind past TIME_WAIT; a live listener still refuses us
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((address, self.port))
                tcp.listen(16)
            except OSError:
                udp.close()
                tcp.close()
                raise
            udp.setblocking(False)
            tcp.setblocking(False)
            self._sockets[address] = (udp, tcp)
            self._selector.register(udp, selectors.EVENT_READ, ("udp", address))
            self._selector.register(tcp, selectors.EVENT_READ, ("tcp", address))
        self._wake()
        log.info("name server listening on %s:%d (udp, tcp)", address, self.port)

    def unbind(self, address: str) -> None:
        with self._lock:
            pair = self._sockets.pop(address, None)
            if pair is None:
                return
            for sock in pair:
                try:
                    self._selector.unregister(sock)
                except (KeyError, ValueError):
                    pass
                sock.close()
        self._wake()
        log.info("name server stopped listening on %s", address)

    def listen(self, addresses: Iterable[str]) -> dict[str, OSError]:
        """Serve exactly `addresses`: bind the new ones, close the rest. The addresses that could not be bound."""
        wanted = set(addresses)
        for address in self.addresses - wanted:
            self.unbind(address)
        failed = {}
        for address in sorted(wanted - self.addresses):
            try:
                self.bind(address)
            except OSError as err:
                failed[address] = err
        return failed

    def close(self) -> None:
        with self._lock:
            self._closed = True
        for address in list(self.addresses):
            self.unbind(address)
        self._wake()
        self._thread.join(2.0)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- serving --------------------------------------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
            try:
                events = self._selector.select(1.0)
            except (OSError, ValueError):
                continue
            for key, _ in events:
                kind, address = key.data
                if kind == "wake":
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                elif kind == "udp":
                    self._udp(key.fileobj, address)
                else:
                    self._accept(key.fileobj, address)

    def _udp(self, sock: socket.socket, address: str) -> None:
        try:
            data, peer = sock.recvfrom(4096)
        except OSError:
            return
        reply = self.answer(address, data, forward=False)
        if reply is FORWARD:
            # the host's resolver may be slow or silent: never on the thread that serves every address
            threading.Thread(target=self._reply, args=(sock, address, data, peer), name="vch-dns-forward",
                             daemon=True).start()
        elif reply is not None:
            self._send(sock, reply, peer)

    def _reply(self, sock: socket.socket, address: str, data: bytes, peer) -> None:
        reply = self.answer(address, data)
        if reply is not None:
            self._send(sock, reply, peer)

    @staticmethod
    def _send(sock: socket.socket, reply: bytes, peer) -> None:
        try:
            sock.sendto(reply, peer)
        except OSError as err:
            log.debug("reply to %s: %s", peer, err)

    def _accept(self, sock: socket.socket, address: str) -> None:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        # a TCP client may be slow: it gets its own short-lived thread, the selector keeps serving the rest
        threading.Thread(target=self._tcp, args=(conn, address), name="vch-dns-tcp", daemon=True).start()

    def _tcp(self, conn: socket.socket, address: str) -> None:
        conn.setblocking(True)
        conn.settimeout(TCP_TIMEOUT)
        try:
            while True:
                head = _recv_exactly(conn, 2)
                if head is None:
                    return
                data = _recv_exactly(conn, struct.unpack(">H", head)[0])
                if data is None:
                    return
                reply = self.answer(address, data)
                if reply is None:
                    return
                conn.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            return
        finally:
            conn.close()

    # -- answering ------------------------------------------------------------------------------------------------
    def answer(self, address: str, data: bytes, *, forward: bool = True):
        """The reply to one query received on `address` (None: not a DNS query; FORWARD: it is for the host's
        resolver, and `forward` is False)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - dnslib raises DNSError and others on garbage
            return None
        reply = request.reply()
        if not request.questions:
            reply.header.rcode = RCODE.FORMERR
            return reply.pack()
        question = request.q
        qname = str(question.qname).rstrip(".").lower()
        try:
            found = self.resolve(address, qname)
        except Exception:  # noqa: BLE001 - a resolver bug answers SERVFAIL, the server goes on
            log.exception("resolving %s on %s", qname, address)
            reply.header.rcode = RCODE.SERVFAIL
            return reply.pack()
        if found is None:
            if "." in qname and self.forward:
                if not forward:
                    return FORWARD
                forwarded = self._forward(data)
                if forwarded is not None:
                    return forwarded
            reply.header.rcode = RCODE.NXDOMAIN if "." not in qname else RCODE.REFUSED
            return reply.pack()
        if question.qtype in (QTYPE.A, QTYPE.ANY):
            for ip in found:
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
        return reply.pack()

    def _forward(self, data: bytes) -> bytes | None:
        host, _, port = self.forward.partition(":")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(FORWARD_TIMEOUT)
                sock.sendto(data, (host, int(port or PORT)))
                reply, _ = sock.recvfrom(65535)
                return reply
        except OSError as err:
            log.debug("forwarding to %s: %s", self.forward, err)
            return None


def _recv_exactly(conn: socket.socket, size: int) -> bytes | None:
    buf = b""
    while len(buf) < size:
        chunk = conn.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def host_resolver(path: str = "/etc/resolv.conf") -> str | None:
    """The host's first IPv4 name server that is not on loopback (ours live there), or None."""
    import ipaddress
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ip = ipaddress.ip_address(parts[1])
            except ValueError:
                continue
            if ip.version == 4 and not ip.is_loopback:
                return str(ip)
    return None


def in_use(err: OSError) -> bool:
    return err.errno == errno.EADDRINUSE


__all__ = ["NameServer", "host_resolver", "in_use", "PORT", "TTL"]
