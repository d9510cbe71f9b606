"""The VCH's own configuration, as it lives in the appliance VM's guestinfo (VIC's `lib/config`
VirtualContainerHostConfigSpec, trimmed to what vic-ref uses).

Keys follow VIC's layout where VIC has the field: the appliance's executor part is under `init`
(`guestinfo.vice./init/common/id`, `guestinfo.vice./init/version/PluginVersion`, as vic-behaviour.md §3 names it),
the vSphere connection under `connect` (`guestinfo.vice./connect/target`, `.../connect/token@secret`), storage under
`storage`, the host certificate under `cert`. vic-ref's own additions (the Docker API listen address and port,
inventory paths) sit beside them.

Everything is guest-visible (the appliance reads it over the guest channel): no field is hidden. Secrets (the vSphere
password, the TLS host key) are `@secret` keys, sealed by `vic_ref.config.secret` as VIC seals them, so they are never
plain text in the VMX. The sealing key sits in `guestinfo.ovfEnv` beside them: the guest reads it and opens them; a
real vCenter hides that key from API readers, the sim does not (so in the sim sealing keeps the password out of plain
sight, not out of reach). `encode()` seals, `decode()` opens.

Read-write keys (`guestinfo.vice..init.sessions|<name>.started`) are what the appliance reports back: `"true"` once a
component serves, or the error that stopped it (VIC's appliance sessions do the same).
"""
from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping

from ..errors import InvalidArgument
from . import extraconfig
from .executor import PLUGIN_VERSION, Build
from .extraconfig import struct, vic
from .secret import GUESTINFO_SECRET_KEY, SecretKey

DEFAULT_BRIDGE_RANGE = "127.42.0.0/16"
DEFAULT_LISTEN_ADDRESS = "127.0.0.1"
DEFAULT_DOCKER_PORT = 2375
DEFAULT_DOCKER_TLS_PORT = 2376
DEFAULT_NAME_CONVENTION = "{name}-{id}"  # DESIGN-DECISIONS §1: {name} cut to 67 characters, {id} the short ID
APPLIANCE_VERSION = "0.1.0"

# The appliance's component sessions (`init.sessions|<name>`), as VIC names its own.
PERSONALITY_SESSION = "docker-personality"


@struct
class VCHCommon:
    """The VCH's identity: its name is its display name and inventory folder name, its id a UUID."""
    id: str = vic("id", "read-only")
    name: str = vic("name", "read-only")


@struct
class ApplianceSession:
    """One component of the appliance; `started` is "" (not yet), "true", or the error that stopped it."""
    started: str = vic("started", "read-write")


@struct
class ApplianceInit:
    """The executor part of the appliance VM (VIC's embedded ExecutorConfig, key `init`)."""
    common: VCHCommon = vic("common", "read-only")
    version: Build | None = vic("version", "read-only")
    sessions: dict[str, ApplianceSession] = vic("sessions", "read-only")
    debug: int = vic("debug", "read-only")


@struct
class Connection:
    """How the VCH reaches vSphere (VIC's config.Connection)."""
    target: str = vic("target", "read-only")  # the SDK URL, e.g. http://127.0.0.1:8989/sdk
    username: str = vic("username", "read-only")
    token: str = vic("token", "read-only,secret")  # the password
    thumbprint: str = vic("target_thumbprint", "read-only")
    insecure: bool = vic("insecure", "read-only")


@struct
class Resources:
    """Where the VCH lives in the inventory: paths as `vic-machine create` takes them (Finder paths)."""
    datacenter: str = vic("datacenter", "read-only")
    compute_resource: str = vic("compute_resource", "read-only")  # a cluster, host or pool path
    folder: str = vic("folder", "read-only")  # the VCH's VM folder, `<dc vm folder>/<vch name>`


@struct
class Storage:
    """Datastore paths, "[ds] path" ("[ds]" alone: the datastore's root); a volume store may be an NFS export
    instead, kept as VIC's URL `nfs://host/path?uid=..&gid=..` (the query: its mount options)."""
    image_store: str = vic("image_store", "read-only")
    volume_stores: dict[str, str] = vic("volume_stores", "read-only")  # name → "[ds] path" or "nfs://..."


def is_nfs_store(location: str) -> bool:
    return location.startswith("nfs://")


@struct
class Network:
    bridge_ip_range: str = vic("bridge-ip-range", "read-only")


@struct
class DockerAPI:
    """Where the personality serves the Docker Engine API."""
    address: str = vic("address", "read-only")
    port: int = vic("port", "read-only")


@struct
class Certificate:
    """TLS of the Docker API: on when `host_cert` is set; clients are verified against `ca_certs` when set."""
    host_cert: bytes = vic("host_cert", "read-only")  # PEM
    host_key: bytes = vic("host_key", "read-only,secret")  # PEM
    ca_certs: bytes = vic("ca_certs", "read-only")  # PEM, the CAs client certificates must chain to


@struct
class ContainerSettings:
    name_convention: str = vic("name_convention", "read-only")
    bootstrap_image_path: str = vic("bootstrap_image_path", "read-only")  # "[ds] <vch>/bootstrap.iso"


@struct
class VCHConfig:
    init: ApplianceInit = vic("init", "read-only")
    connection: Connection = vic("connect", "read-only")
    resources: Resources = vic("resources", "read-only")
    storage: Storage = vic("storage", "read-only")
    network: Network = vic("network", "read-only")
    docker: DockerAPI = vic("docker", "read-only")
    cert: Certificate = vic("cert", "read-only")
    container: ContainerSettings = vic("container", "read-only")

    # -- shortcuts for readers ------------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.init.common.id

    @property
    def name(self) -> str:
        return self.init.common.name

    @property
    def tls(self) -> bool:
        return bool(self.cert.host_cert)

    @property
    def version(self) -> str:
        return self.init.version.version if self.init.version is not None else ""

    @property
    def plugin_version(self) -> int:
        return self.init.version.plugin_version if self.init.version is not None else 0

    @property
    def docker_host(self) -> str:
        """`tcp://address:port`, as DOCKER_HOST takes it."""
        return f"tcp://{self.docker.address}:{self.docker.port}"

    def validate(self) -> VCHConfig:
        """Raise InvalidArgument for a config a VCH can't run with; returns self."""
        problems = []
        if not self.name:
            problems.append("no VCH name")
        try:
            uuid.UUID(self.id)
        except ValueError:
            problems.append(f"VCH id {self.id!r} is not a UUID")
        if not self.connection.target:
            problems.append("no target URL")
        if not self.storage.image_store.startswith("["):
            problems.append(f"image store {self.storage.image_store!r} is not a datastore path")
        for name, path in self.storage.volume_stores.items():
            if not path.startswith("[") and not is_nfs_store(path):
                problems.append(f"volume store {name}: {path!r} is not a datastore path")
        try:
            ipaddress.ip_network(self.network.bridge_ip_range)
        except ValueError:
            problems.append(f"bridge range {self.network.bridge_ip_range!r} is not a network")
        if not 0 < self.docker.port < 65536:
            problems.append(f"Docker API port {self.docker.port} is out of range")
        if bool(self.cert.host_cert) != bool(self.cert.host_key):
            problems.append("TLS needs both a host certificate and its key")
        if problems:
            raise InvalidArgument("invalid VCH configuration: " + "; ".join(problems))
        return self


def new_config(name: str, target: str, username: str, password: str, *, image_store: str,
               datacenter: str = "", compute_resource: str = "", folder: str = "",
               volume_stores: Mapping[str, str] | None = None, bridge_ip_range: str = DEFAULT_BRIDGE_RANGE,
               address: str = DEFAULT_LISTEN_ADDRESS, port: int | None = None,
               host_cert: bytes = b"", host_key: bytes = b"", ca_certs: bytes = b"",
               name_convention: str = DEFAULT_NAME_CONVENTION, bootstrap_image_path: str = "",
               version: str = APPLIANCE_VERSION, vch_id: str | None = None, insecure: bool = False,
               thumbprint: str = "", debug: int = 0) -> VCHConfig:
    """A VCH config with VIC's defaults filled in (a fresh UUID unless `vch_id` is given)."""
    if port is None:
        port = DEFAULT_DOCKER_TLS_PORT if host_cert else DEFAULT_DOCKER_PORT
    return VCHConfig(
        init=ApplianceInit(common=VCHCommon(id=vch_id or str(uuid.uuid4()), name=name),
                           version=Build(version=version, plugin_version=PLUGIN_VERSION), debug=debug),
        connection=Connection(target=target, username=username, token=password, thumbprint=thumbprint,
                              insecure=insecure),
        resources=Resources(datacenter=datacenter, compute_resource=compute_resource, folder=folder),
        storage=Storage(image_store=image_store, volume_stores=dict(volume_stores or {})),
        network=Network(bridge_ip_range=bridge_ip_range),
        docker=DockerAPI(address=address, port=port),
        cert=Certificate(host_cert=host_cert, host_key=host_key, ca_certs=ca_certs),
        container=ContainerSettings(name_convention=name_convention, bootstrap_image_path=bootstrap_image_path),
    )


# -- guestinfo ---------------------------------------------------------------------------------------------------
def encode(cfg: VCHConfig, secret: SecretKey | None = None) -> dict[str, str]:
    """The appliance VM's extraConfig entries: `@secret` values sealed, the key in `guestinfo.ovfEnv`.

    Pass the SecretKey already in the VM's config when rewriting it (a new one re-seals everything; both work).
    """
    return (secret or SecretKey()).seal_values(extraconfig.encode(cfg))


def decode(data: Mapping[str, str]) -> VCHConfig:
    """The config from an extraConfig dict or the guest's `items("guestinfo.")`; other keys are ignored.

    Secret values are opened with the key in `guestinfo.ovfEnv`; without it they are taken as they are (a config
    written by `extraconfig.encode` alone, in tests).
    """
    secret = SecretKey.from_data(data)
    plain = secret.open_values(data) if secret is not None else dict(data)
    return extraconfig.decode(VCHConfig, plain)


def secret_key_of(data: Mapping[str, str]) -> SecretKey | None:
    return SecretKey.from_data(data)


def key_for(*path: str | int) -> str:
    """The key of one part of a VCHConfig, e.g. `key_for("init", "sessions", PERSONALITY_SESSION, "started")`."""
    return extraconfig.key_for(VCHConfig, *path)


def session_started_key(session: str = PERSONALITY_SESSION) -> str:
    """`guestinfo.vice..init.sessions|<session>.started`: where the appliance says a component serves (or why not)."""
    return key_for("init", "sessions", session, "started")


owns_key = extraconfig.owned_by(VCHConfig)


def diff(old: Mapping[str, str], new: Mapping[str, str]) -> list[extraconfig.Change]:
    """Changes from the appliance VM's extraConfig to `new` (deleting only keys a VCHConfig or its seal can own)."""
    return extraconfig.diff(old, new, owned=lambda k: k == GUESTINFO_SECRET_KEY or owns_key(k))


__all__ = [
    "VCHConfig", "VCHCommon", "ApplianceInit", "ApplianceSession", "Connection", "Resources", "Storage", "Network",
    "is_nfs_store",
    "DockerAPI", "Certificate", "ContainerSettings", "new_config", "encode", "decode", "key_for", "diff",
    "session_started_key", "secret_key_of", "DEFAULT_BRIDGE_RANGE", "DEFAULT_DOCKER_PORT", "DEFAULT_DOCKER_TLS_PORT",
    "DEFAULT_NAME_CONVENTION", "DEFAULT_LISTEN_ADDRESS", "PERSONALITY_SESSION", "APPLIANCE_VERSION",
]
