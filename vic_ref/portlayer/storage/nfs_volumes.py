"""NFS volume stores (VIC `lib/portlayer/storage/volume/nfs`, vic-behaviour.md §2(a)2 and §4.8).

A store is an export given to vic-machine as `nfs://host/path?uid=..&gid=..:<name>`. The port layer reaches it with
its own NFS client (libnfs, `vic_ref/nfs`), never through a mount of the appliance, as VIC's port layer does with its
XDR client. Layout under the export path:

    <path>/volumes/<name>/             the volume: a plain directory, mounted by the containers that join it
    <path>/volumes_metadata/<name>/    one file per metadata key (the personality keeps Docker's model in
                                       `DockerMetaData`), written after the volume's directory

The store keeps no state of its own: `scan` lists `volumes/` and reads each one's metadata. A volume has no disk, so
there is no capacity and no "device in use": containers share an NFS volume, as VIC allows. Joining puts a mount
spec `nfs://host/path/volumes/<name>` with VIC's NFS mount options into the executor config; the tether mounts it.
"""
from __future__ import annotations

import posixpath
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

from ... import errors
from ...trace import Operation

VOLUMES_DIR = "volumes"
METADATA_DIR = "volumes_metadata"
DEFAULT_UID = 1000  # VIC's nfs.DefaultUID: the id the port layer uses when the URL names none
DIR_MODE = 0o755
# VIC's join.go mount options for the container's kernel mount; `addr=<host>` is added per store
MOUNT_OPTIONS = "vers=3,rsize=131072,wsize=131072,hard,proto=tcp,timeo=600,sec=sys,mountvers=3,mountproto=tcp,nolock"


def parse_ids(url: str) -> tuple[int, int]:
    """(uid, gid) from the store URL's query as VIC's parseUIDAndGID reads them: gid defaults to uid, both to 1000."""
    query = parse_qs(urlsplit(url).query)
    uid_text = (query.get("uid") or [""])[0]
    gid_text = (query.get("gid") or [""])[0] or uid_text
    ids = []
    for name, text in (("uid", uid_text), ("gid", gid_text)):
        try:
            value = int(text) if text else DEFAULT_UID
        except ValueError:
            raise errors.InvalidArgument(f'strconv.Atoi: parsing "{text}": invalid syntax') from None
        if value < 0:
            raise errors.InvalidArgument(f"supplied url ({url}) for nfs volume store has invalid {name} : ({value})")
        ids.append(value)
    return ids[0], ids[1]


class NfsVolumeStore:
    """One NFS volume store: its volumes' directories and metadata on the export."""

    def __init__(self, name: str, url: str):
        parts = urlsplit(url)
        if parts.scheme != "nfs" or not parts.hostname or not parts.path:
            raise errors.InvalidArgument(f"volume store {name}: {url!r} is not nfs://<host>/<path>")
        self.name = name
        self.url = url
        self.host = parts.hostname
        self.netloc = parts.netloc.rpartition("@")[2]
        self.path = parts.path
        self.uid, self.gid = parse_ids(url)

    def client_url(self) -> str:
        """The export for libnfs, with the ids the port layer's requests carry (AUTH_SYS)."""
        return f"nfs://{self.netloc}{self.path}?uid={self.uid}&gid={self.gid}"

    def volume_source(self, name: str) -> str:
        """What a container mounts: the volume's directory on the export (no query: VIC's mount spec has none)."""
        return f"nfs://{self.netloc}{posixpath.join(self.path, VOLUMES_DIR, name)}"

    def mount_options(self, readonly: bool = False) -> str:
        return f"{MOUNT_OPTIONS},addr={self.host}" + (",ro" if readonly else "")

    @contextmanager
    def _export(self, op: Operation):
        """A connection to the export for one operation (VIC mounts and unmounts around each)."""
        from ...nfs.libnfs import NfsClient
        try:
            client = NfsClient.connect(self.client_url())
        except OSError as err:
            raise errors.Unavailable(f"volume store {self.name} ({self.url}) can't be reached: "
                                     f"{err.strerror or err}", op_id=op.id) from None
        try:
            yield client
        finally:
            client.close()

    # -- the store ----------------------------------------------------------------------------------------------
    def start(self, op: Operation) -> None:
        """Make `volumes/` and `volumes_metadata/` (VIC's NewVolumeStore); Unavailable when the export can't be used."""
        with self._export(op) as export:
            for folder in (VOLUMES_DIR, METADATA_DIR):
                try:
                    export.mkdir(f"/{folder}", DIR_MODE)
                except FileExistsError:
                    pass
                except OSError as err:
                    raise errors.Unavailable(f"volume store {self.name} ({self.url}): can't create {folder}: "
                                             f"{err.strerror or err}", op_id=op.id) from None

    def scan(self, op: Operation) -> dict[str, dict[str, bytes]]:
        """Every volume of the store with its metadata (a volume whose create never finished, no metadata, is
        deleted, as the datastore store does)."""
        found: dict[str, dict[str, bytes]] = {}
        with self._export(op) as export:
            for name in sorted(export.listdir(f"/{VOLUMES_DIR}")):
                if name in (".", ".."):
                    continue
                metadata_dir = f"/{METADATA_DIR}/{name}"
                try:
                    keys = [k for k in export.listdir(metadata_dir) if k not in (".", "..")]
                except FileNotFoundError:
                    keys = []
                if not keys:
                    op.warning("volume store %s: deleting the unfinished volume %s", self.name, name)
                    export.remove_tree(f"/{VOLUMES_DIR}/{name}")
                    export.remove_tree(metadata_dir)
                    continue
                found[name] = {key: export.read_bytes(f"{metadata_dir}/{key}") for key in sorted(keys)}
        return found

    def create(self, op: Operation, name: str, metadata: dict[str, bytes]) -> None:
        """The volume's directory, then its metadata; FileExistsError if the directory is there already (another
        VCH on the same export made it). A failure after the directory removes what was made."""
        with self._export(op) as export:
            export.mkdir(f"/{VOLUMES_DIR}/{name}", DIR_MODE)
            try:
                try:
                    export.mkdir(f"/{METADATA_DIR}/{name}", DIR_MODE)
                except FileExistsError:
                    pass  # left by a remove that lost its volume directory first
                for key, value in (metadata or {"created": b""}).items():
                    export.write_bytes(f"/{METADATA_DIR}/{name}/{key}", value)
            except BaseException as err:
                op.warning("creating NFS volume %s failed (%s); removing it", name, err)
                for path in (f"/{VOLUMES_DIR}/{name}", f"/{METADATA_DIR}/{name}"):
                    try:
                        export.remove_tree(path)
                    except OSError as cleanup:
                        op.error("could not remove %s from %s: %s", path, self.url, cleanup)
                raise

    def remove(self, op: Operation, name: str) -> None:
        """The volume's directory with everything in it, then its metadata (VIC's VolumeDestroy)."""
        with self._export(op) as export:
            export.remove_tree(f"/{VOLUMES_DIR}/{name}")
            try:
                export.remove_tree(f"/{METADATA_DIR}/{name}")
            except OSError as err:
                op.error("failed to remove metadata for volume (%s) on volume store (%s): %s", name, self.name, err)


__all__ = ["NfsVolumeStore", "parse_ids", "VOLUMES_DIR", "METADATA_DIR", "MOUNT_OPTIONS", "DEFAULT_UID"]
