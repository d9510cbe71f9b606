"""Datastore paths (`[ds] folder/file`) and datastore files over HTTP (`/folder/<path>?dcPath=…&dsName=…`).

Transfers stream: an upload reads its source in chunks, a download writes to its destination (or yields chunks) as
they arrive. They go over plain HTTP(S) with the SOAP session's cookie, which the session stub can't re-login for; so
a 401 makes us check the session (which logs in again) and retry once, when the source can be read again.
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote, urlencode

from .. import errors
from ..trace import Operation

if TYPE_CHECKING:
    from .session import Session

CHUNK = 1024 * 1024
_DS_PATH = re.compile(r"^\[([^\]]*)\]\s*(.*)$")


@dataclass(frozen=True)
class DatastorePath:
    """A datastore path: `[datastore] path/in/it` (path without a leading `/`; "" is the datastore's root)."""
    datastore: str
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> DatastorePath:
        match = _DS_PATH.match(text.strip())
        if match is None or not match.group(1):
            raise errors.InvalidArgument(f"invalid datastore path {text!r}: expected \"[datastore] path\"")
        return cls(match.group(1), match.group(2).strip().lstrip("/"))

    @classmethod
    def of(cls, value: DatastorePath | str) -> DatastorePath:
        return value if isinstance(value, DatastorePath) else cls.parse(value)

    def join(self, *parts: str) -> DatastorePath:
        segments = [self.path] if self.path else []
        segments += [p.strip("/") for p in parts if p and p.strip("/")]
        return DatastorePath(self.datastore, "/".join(segments))

    @property
    def parent(self) -> DatastorePath:
        return DatastorePath(self.datastore, self.path.rsplit("/", 1)[0] if "/" in self.path else "")

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return f"[{self.datastore}] {self.path}" if self.path else f"[{self.datastore}]"


# -- HTTP transfers --------------------------------------------------------------------------------------------------
def folder_url_path(session: Session, path: DatastorePath, datacenter_path: str | None = None) -> str:
    """The request path of a datastore file: `/folder/<path>?dcPath=<dc>&dsName=<ds>`."""
    dc = datacenter_path if datacenter_path is not None else session.datacenter_path
    if dc is None:
        raise errors.InvalidArgument("datastore file transfer needs a datacenter: populate the session first")
    query = urlencode({"dcPath": dc.strip("/"), "dsName": path.datastore})
    return f"/folder/{quote(path.path)}?{query}"


def _status_error(op: Operation, status: int, reason: str, path: DatastorePath, body: bytes) -> errors.VicError:
    text = f"{path}: HTTP {status} {reason}".rstrip()
    detail = body[:200].decode("utf-8", "replace").strip()
    if detail:
        text += f": {detail}"
    if status == 404:
        return errors.NotFound(text, op_id=op.id)
    if status in (401, 403):
        return errors.PermissionDenied(text, op_id=op.id)
    if status == 409:
        return errors.Conflict(text, op_id=op.id)
    if status in (400, 412):
        return errors.InvalidArgument(text, op_id=op.id)
    if status >= 500:
        return errors.Unavailable(text, op_id=op.id)
    return errors.VsphereError(text, op_id=op.id)


def _headers(session: Session, op: Operation) -> dict[str, str]:
    # the op id in a header, for anyone reading server logs; the cookie authenticates
    return {"Cookie": session.cookie_header(), "X-VIC-Operation-Id": op.id}


def upload(session: Session, op: Operation, path: DatastorePath | str, source: bytes | BinaryIO | str | Path, *,
           datacenter_path: str | None = None) -> None:
    """PUT a file to the datastore from bytes, a binary file object (streamed) or a local file path."""
    path = DatastorePath.of(path)
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            return upload(session, op, path, handle, datacenter_path=datacenter_path)
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    start, size = _position_and_size(stream)
    url = folder_url_path(session, path, datacenter_path)
    for attempt in (1, 2):
        op.check()
        conn = session.http_connection()
        try:
            headers = {**_headers(session, op), "Content-Type": "application/octet-stream"}
            if size is not None:
                headers["Content-Length"] = str(size)
                conn.request("PUT", url, body=stream, headers=headers)
            else:
                conn.request("PUT", url, body=_chunks(stream), headers=headers, encode_chunked=True)
            reply = conn.getresponse()
            body = reply.read()
        except OSError as err:
            raise errors.Unavailable(f"upload to {path}: {err}", op_id=op.id) from err
        finally:
            conn.close()
        if reply.status in (200, 201, 204):
            op.debug("uploaded %s (%s bytes)", path, size if size is not None else "?")
            return None
        if reply.status == 401 and attempt == 1 and start is not None:
            session.ensure_logged_in(op)
            stream.seek(start)
            continue
        raise _status_error(op, reply.status, reply.reason, path, body)
    return None


def _position_and_size(stream: BinaryIO) -> tuple[int | None, int | None]:
    """Where the stream is and how much is left, when it can seek (else None, None: sent chunked, no retry)."""
    try:
        if not stream.seekable():
            return None, None
        start = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(start)
        return start, end - start
    except (AttributeError, OSError, ValueError):
        return None, None


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        block = stream.read(CHUNK)
        if not block:
            return
        yield block


def iter_download(session: Session, op: Operation, path: DatastorePath | str, *, chunk_size: int = CHUNK,
                  datacenter_path: str | None = None) -> Iterator[bytes]:
    """GET a datastore file, yielding its content chunk by chunk as it arrives."""
    path = DatastorePath.of(path)
    url = folder_url_path(session, path, datacenter_path)
    for attempt in (1, 2):
        op.check()
        conn = session.http_connection()
        try:
            try:
                conn.request("GET", url, headers=_headers(session, op))
                reply = conn.getresponse()
            except OSError as err:
                raise errors.Unavailable(f"download of {path}: {err}", op_id=op.id) from err
            if reply.status == 401 and attempt == 1:
                reply.read()
                session.ensure_logged_in(op)
                continue
            if reply.status != 200:
                raise _status_error(op, reply.status, reply.reason, path, reply.read())
            while True:
                try:
                    block = reply.read(chunk_size)
                except OSError as err:
                    raise errors.Unavailable(f"download of {path}: {err}", op_id=op.id) from err
                if not block:
                    return
                yield block
        finally:
            conn.close()


def download(session: Session, op: Operation, path: DatastorePath | str, dest: BinaryIO | str | Path | None = None,
             *, datacenter_path: str | None = None) -> bytes | int:
    """A datastore file's content: returned as bytes (no `dest`), or streamed into `dest` (returns the size)."""
    chunks = iter_download(session, op, path, datacenter_path=datacenter_path)
    if dest is None:
        return b"".join(chunks)
    if isinstance(dest, (str, Path)):
        with open(dest, "wb") as handle:
            return download(session, op, path, handle, datacenter_path=datacenter_path)
    size = 0
    for block in chunks:
        dest.write(block)
        size += len(block)
    return size
