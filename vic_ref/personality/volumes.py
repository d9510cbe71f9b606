"""Volume routes and the volume part of container create and remove (VIC's `StorageProxy` and volume backend,
vic-behaviour.md §2; DESIGN-DECISIONS §4).

- `docker volume create|ls|inspect|rm|prune`: VIC's option parsing (`VolumeStore`, `Capacity` in MB or go-units
  decimal sizes, case-insensitive keys; only VIC's whitelist of options), drivers `vsphere` and `local`, Docker's
  model with `Mountpoint` = the volume's disk label, filters `dangling`, `name`, `driver`, `label`, and VIC's texts.
  Docker's model of a volume (driver, options as given, labels, the containers that made it) is the port layer's
  metadata key `DockerMetaData`, so a restarted VCH shows the same volumes.
- create/run `-v`: `plan_mounts` checks every `-v` before anything is made (host directories refused, flags checked)
  and rewrites the anonymous `Config.Volumes` keys to `<id>:<dest>:<flags>` as VIC does; `join_mounts` creates what
  is missing (anonymous volumes in the `default` store; a named volume on first use) and joins each to the handle.
- rm `-v` (and `--rm`): `remove_anonymous` deletes the container's anonymous volumes nobody else has joined.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .. import errors
from ..config.executor import COPY_NEVER, COPY_NEW
from ..portlayer.storage import volumes as pl_volumes
from . import common
from .common import bool_param, call, json_body, portlayer
from .errors import DockerError, bad_request, not_implemented

DRIVER = "vsphere"
DRIVERS = ("vsphere", "local")  # `local` is the docker default, the same as vsphere here
METADATA_KEY = "DockerMetaData"
OPT_STORE, OPT_CAPACITY = "volumestore", "capacity"
OPT_FLAGS, OPT_CONTAINER, OPT_IMAGE = "flags", "container", "image"
VALID_OPTS = (OPT_STORE, OPT_CAPACITY, OPT_FLAGS, OPT_CONTAINER, OPT_IMAGE)
FILTERS = ("dangling", "name", "driver", "label")
MB = 1000 * 1000  # go-units' decimal MB
INT64_MAX = 2 ** 63 - 1
_HUMAN_SIZE = re.compile(r"^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_DECIMAL = {"k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4, "p": 1000 ** 5}
SELINUX_FLAGS = ("z", "Z")
PROPAGATION_FLAGS = ("shared", "rshared", "slave", "rslave", "private", "rprivate")


def server_error(message: str) -> DockerError:
    """VIC's VolumeInternalServerError: a 500 with the text as it is."""
    return DockerError(500, message)


# -- options (VIC newVolumeCreateReq / validateDriverArgs) ------------------------------------------------------------
def from_human_size(text: str) -> int:
    """go-units FromHumanSize: decimal units, bytes; ValueError `invalid size: '<text>'`; an overflow gives a
    negative number, as Go's float→int64 conversion does."""
    match = _HUMAN_SIZE.match(text)
    if match is None:
        raise ValueError(f"invalid size: '{text}'")
    try:
        size = float(match.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{text}'") from None
    unit = (match.group(3) or "").lower()
    value = size * _DECIMAL.get(unit, 1)
    if value >= 2 ** 63:
        return -(2 ** 63)
    return int(value)


def parse_capacity(text: str) -> int:
    """VIC's Capacity: a plain integer is MB; else a go-units size in decimal units; MB (−1: not given)."""
    try:
        capacity = int(text, 10) if re.fullmatch(r"[+-]?\d+", text) else None
    except ValueError:
        capacity = None
    if capacity is not None and -2 ** 63 <= capacity <= INT64_MAX:
        if capacity < 1:
            raise ValueError(f"Invalid size: {text}")
        return capacity
    size = from_human_size(text)
    if size < 1:
        raise ValueError(f"Capacity value too large: {text}")
    return size // MB


@dataclass
class CreateRequest:
    name: str
    driver: str
    opts: dict[str, str]  # as given (DockerMetaData keeps them so)
    labels: dict[str, str]
    store: str = pl_volumes.DEFAULT_STORE
    capacity_mb: int = -1

    def metadata(self, container: str = "", image: str = "") -> dict[str, bytes]:
        doc = {"Driver": self.driver, "DriverOpts": self.opts, "Name": self.name, "Labels": self.labels or None,
               "AttachHistory": [container], "Image": image}
        return {METADATA_KEY: json.dumps(doc).encode()}


def create_request(name: str, driver: str, opts: dict[str, str] | None, labels: dict[str, str] | None
                   ) -> CreateRequest:
    """Check a create as VIC's persona does, in its order; DockerError (500, VIC's texts) when it can't be made."""
    name = name or str(uuid.uuid4())
    driver = driver or "local"
    if driver not in DRIVERS:
        raise server_error(f"error looking up volume plugin {driver}: plugin not found")
    if not pl_volumes.NAME_RE.match(name):
        raise server_error(f'volume name "{name}" includes invalid characters, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" '
                           "are allowed")
    opts = {str(k): str(v) for k, v in (opts or {}).items()}
    request = CreateRequest(name, driver, dict(opts), {str(k): str(v) for k, v in (labels or {}).items()})
    lowered = {}
    for key, value in opts.items():
        if key.lower() not in VALID_OPTS:
            raise server_error(f"bad driver value - {key} is not a supported option")
        lowered[key.lower()] = value
    request.store = lowered.get(OPT_STORE, pl_volumes.DEFAULT_STORE)
    if OPT_CAPACITY in lowered:
        try:
            request.capacity_mb = parse_capacity(lowered[OPT_CAPACITY])
        except ValueError as err:
            raise server_error(f"bad driver value - {err}") from None
    try:
        pl_volumes.check_name(name)
    except errors.InvalidArgument as err:
        raise server_error(err.message) from None
    return request


def create_volume(op, pl, request: CreateRequest, *, container: str = "", image: str = ""):
    """The port layer's create with VIC's texts for its refusals."""
    volumes = _volumes(pl)
    try:
        return volumes.create(op, request.name, store=request.store, capacity_mb=request.capacity_mb,
                              metadata=request.metadata(container, image))
    except pl_volumes.VolumeExists:
        raise server_error(f"A volume named {request.name} already exists. Choose a different volume name.") \
            from None
    except pl_volumes.StoreNotFound:
        raise server_error(f"No volume store named ({request.store}) exists") from None
    except DockerError:
        raise
    except errors.VicError as err:
        raise server_error(err.message) from err


def _volumes(pl):
    volumes = getattr(pl, "volumes", None)
    if volumes is None:
        raise errors.Unavailable("no volume stores")
    return volumes


# -- the Docker model ----------------------------------------------------------------------------------------------
def docker_metadata(volume) -> dict[str, Any]:
    raw = (volume.metadata or {}).get(METADATA_KEY)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def volume_json(volume, driver: str = DRIVER) -> dict[str, Any]:
    meta = docker_metadata(volume)
    return {"Name": volume.name, "Driver": driver, "Mountpoint": volume.label,
            "Labels": meta.get("Labels") or {}, "Options": meta.get("DriverOpts") or {}, "Scope": "local"}


# -- routes ----------------------------------------------------------------------------------------------------------
def _create(op, pl, body: dict) -> dict[str, Any]:
    request = create_request(str(body.get("Name") or ""), str(body.get("Driver") or ""),
                             body.get("DriverOpts") or {}, body.get("Labels") or {})
    volume = create_volume(op, pl, request)
    return volume_json(volume, request.driver)


async def create(request: web.Request) -> web.Response:
    body = await json_body(request, {})
    if not isinstance(body, dict):
        raise bad_request("invalid JSON: the body must be an object")
    return web.json_response(await call(request, _create, portlayer(request), body), status=201)


def list_volumes(op, pl, filter_text: str | None) -> list[dict[str, Any]]:
    from .filters import parse
    args = parse(filter_text)
    for key in args.fields:
        if key not in FILTERS:
            raise server_error(f"Invalid filter '{key}'")
    dangling = None
    for value in args.get("dangling"):
        if value.lower() in ("true", "1"):
            wanted = True
        elif value.lower() in ("false", "0"):
            wanted = False
        else:
            raise server_error(f"invalid filter 'dangling={value}'")
        dangling = wanted if dangling is None or dangling == wanted else None
    joined = joined_volumes(pl)
    out = []
    for volume in _volumes(pl).list(op):
        if dangling is not None and (volume.name not in joined) != dangling:
            continue
        names = args.get("name")
        if names and not any(_name_matches(pattern, volume.name) for pattern in names):
            continue
        drivers = args.get("driver")
        if drivers and DRIVER not in drivers:
            continue
        labels = args.get("label")
        if labels and not _labels_match(labels, docker_metadata(volume).get("Labels") or {}):
            continue
        out.append(volume_json(volume))
    return out


def _name_matches(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return pattern in name


def _labels_match(wanted: list[str], labels: dict[str, str]) -> bool:
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def joined_volumes(pl) -> set[str]:
    """Names of the volumes some container has joined (VIC's fetchJoinedVolumes)."""
    return {name for info in pl.exec.list() for name in info.config.mounts}


async def list_(request: web.Request) -> web.Response:
    volumes = await call(request, list_volumes, portlayer(request), request.query.get("filters"))
    return web.json_response({"Volumes": volumes, "Warnings": []})


def _inspect(op, pl, name: str) -> dict[str, Any]:
    try:
        return volume_json(_volumes(pl).get(op, name))
    except errors.NotFound:
        raise DockerError(404, f"No such volume: {name}") from None


async def inspect(request: web.Request) -> web.Response:
    return web.json_response(await call(request, _inspect, portlayer(request), request.match_info["name"]))


def _remove(op, pl, name: str) -> None:
    try:
        _volumes(pl).remove(op, name)
    except errors.NotFound:
        raise DockerError(404, f"Get {name}: no such volume") from None
    except errors.Conflict as err:
        raise DockerError(409, err.message) from None
    except errors.VicError as err:
        raise server_error(f"Server error from portlayer: {err.message}") from err


async def remove(request: web.Request) -> web.Response:
    bool_param(request, "force")  # accepted; VIC has nothing to force
    await call(request, _remove, portlayer(request), request.match_info["name"])
    return web.Response(status=204)


async def prune(request: web.Request) -> web.Response:
    raise not_implemented(f"{common.PRODUCT} does not yet implement VolumesPrune")


def add_routes(app: web.Application) -> None:
    add = common.add_route
    add(app, "POST", "/volumes/create", create)
    add(app, "GET", "/volumes", list_)
    add(app, "POST", "/volumes/prune", prune)
    add(app, "GET", "/volumes/{name}", inspect)
    add(app, "DELETE", "/volumes/{name}", remove)


# -- container create: -v and image volumes (VIC AddVolumesToContainer) ----------------------------------------------
@dataclass
class MountRequest:
    name: str
    dest: str
    flags: str
    anonymous: bool

    @property
    def copy_mode(self) -> int:
        return COPY_NEVER if "nocopy" in self.flags.split(",") else COPY_NEW


def _parse_volume(text: str) -> MountRequest:
    """VIC processVolumeParam: `/dest` (anonymous), `name:/dest`, `name:/dest:flags`."""
    parts = text.split(":")
    if len(parts) > 1 and parts[0].startswith("/"):
        raise bad_request("Bad request error from portlayer: mounting directories as a data volume is not "
                          "supported.")
    if len(parts) == 1:
        request = MountRequest(str(uuid.uuid1()), parts[0], "rw", True)
    elif len(parts) == 2:
        request = MountRequest(parts[0], parts[1], "rw", False)
    elif len(parts) == 3:
        request = MountRequest(parts[0], parts[1], parts[2] or "rw", False)
    else:
        raise bad_request(f"volume bind input is invalid: -v {text}")
    if not request.dest.startswith("/"):
        raise bad_request(f"invalid volume specification: '{text}': invalid mount path: '{request.dest}' mount "
                          "path must be absolute")
    _check_flags(text, request.flags)
    return request


def _check_flags(text: str, flags: str) -> None:
    seen = set()
    for flag in flags.split(","):
        if flag in SELINUX_FLAGS:
            raise bad_request(f"invalid volume specification: '{text}': the \"{flag}\" flag (SELinux relabeling) is "
                              f"not supported by {common.PRODUCT}")
        if flag in PROPAGATION_FLAGS:
            raise bad_request(f"invalid volume specification: '{text}': the \"{flag}\" flag (mount propagation) "
                              f"is not supported by {common.PRODUCT}")
        if flag not in ("rw", "ro", "nocopy"):
            raise bad_request(f"invalid volume specification: '{text}': invalid mode: {flag}")
        seen.add(flag)
    if {"rw", "ro"} <= seen:
        raise bad_request(f"invalid volume specification: '{text}': invalid mode: {flags}")


def plan_mounts(config: dict[str, Any], host: dict[str, Any]) -> list[MountRequest]:
    """The volumes of a new container (binds win over anonymous volumes at the same path), checked; the anonymous
    `Config.Volumes` keys rewritten to `<id>:<dest>:<flags>`. Nothing is created here."""
    binds = [str(b) for b in host.get("Binds") or []]
    volumes = config.get("Volumes") or {}
    by_dest: dict[str, MountRequest] = {}
    dest_of: dict[str, str] = {}
    for text in volumes:
        request = _parse_volume(str(text))
        by_dest[request.dest] = request
        dest_of[text] = request.dest
    named: dict[str, MountRequest] = {}
    for text in binds:
        request = _parse_volume(text)
        if request.dest in named:
            raise bad_request(f"Duplicate mount point: {request.dest}")
        named[request.dest] = request
    by_dest.update(named)
    if volumes:
        rewritten: dict[str, Any] = {}
        for key, value in volumes.items():
            request = by_dest[dest_of[key]]
            rewritten[f"{request.name}:{request.dest}:{request.flags}"] = value
        config["Volumes"] = rewritten
    return sorted(by_dest.values(), key=lambda r: r.dest)


def join_mounts(op, pl, handle, plan: list[MountRequest], *, container: str, image: str,
                made: list[str] | None = None) -> list[str]:
    """Create what is missing and join every volume to the new container's handle; the names of the volumes this
    made are added to `made` as they are made (removed again by the caller if the create fails)."""
    made = made if made is not None else []
    if not plan:
        return made
    volumes = _volumes(pl)
    for item in plan:
        try:
            volume = volumes.get(op, item.name)
        except errors.NotFound:
            request = create_request(item.name, DRIVER, {OPT_FLAGS: item.flags, OPT_CONTAINER: container,
                                                         OPT_IMAGE: image}, None)
            try:
                volume = volumes.create(op, request.name, store=request.store, capacity_mb=request.capacity_mb,
                                        metadata=request.metadata(container, image))
                made.append(volume.name)
            except pl_volumes.VolumeExists:
                volume = volumes.get(op, item.name)  # made meanwhile: joined as it is (VIC ignores the 409)
            except pl_volumes.StoreNotFound:
                raise server_error(f"No volume store named ({request.store}) exists") from None
            except errors.VicError as err:
                raise server_error(err.message) from err  # VIC: InternalServerError, never a 404 the CLI reads
        volumes.join(op, handle, volume, item.dest, mode=item.flags, copy_mode=item.copy_mode)
    return made


def discard_made(op, pl, names: list[str]) -> None:
    for name in names:
        try:
            _volumes(pl).remove(op, name)
        except errors.VicError as err:
            op.warning("could not remove volume %s of a failed create: %s", name, err)


def remove_anonymous(op, pl, info, config: dict[str, Any], host: dict[str, Any]) -> None:
    """After `docker rm -v`: remove the container's anonymous volumes (`<id>:<dest>:<flags>` keys whose path no
    bind covers) that no other container has joined (VIC RemoveAnonContainerVols). Errors are only logged."""
    named_paths = {str(b).split(":", 2)[1] for b in host.get("Binds") or [] if str(b).count(":") >= 1}
    try:
        joined = joined_volumes(pl)
    except errors.VicError as err:
        op.warning("rm -v %s: the joined volumes are unknown (%s); anonymous volumes kept", info.id[:12], err)
        return
    for key in config.get("Volumes") or {}:
        fields = str(key).split(":", 2)
        if len(fields) != 3:
            continue
        name, path = fields[0], fields[1]
        if name in joined or path in named_paths:
            continue
        try:
            _volumes(pl).remove(op, name)
            op.info("removed anonymous volume %s of %s", name, info.id[:12])
        except errors.VicError as err:
            op.debug("anonymous volume %s of %s stays: %s", name, info.id[:12], err)


def mounts_json(info) -> list[dict[str, Any]]:
    """`Mounts` of inspect and ps (VIC MountsFromContainer): one volume mount per mount spec."""
    out = []
    for name, spec in sorted(info.config.mounts.items(), key=lambda item: item[1].path):
        mode = spec.mode or "rw"
        out.append({"Type": "volume", "Name": name, "Source": name, "Destination": spec.path, "Driver": DRIVER,
                    "Mode": mode, "RW": "ro" not in mode.split(","), "Propagation": ""})
    return out


__all__ = ["add_routes", "plan_mounts", "join_mounts", "discard_made", "remove_anonymous", "mounts_json",
           "create_request", "parse_capacity", "from_human_size", "volume_json", "list_volumes"]
