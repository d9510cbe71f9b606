"""Docker's JSON shapes of containers, made from the port layer's `ContainerInfo`: inspect (`/containers/{id}/json`)
and list (`/containers/json`), and the create config kept with the container.

What Docker keeps of a container and vSphere has no place for (its Config and HostConfig as created) lives in the
container VM's hidden annotations, base64 JSON as VIC keeps `docker.labels`: a restarted VCH shows the same inspect.
"""
from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

from ..portlayer.events import LABELS_ANNOTATION
from ..portlayer.exec import ContainerInfo, rfc3339

CONFIG_ANNOTATION = "docker.config"
HOSTCONFIG_ANNOTATION = "docker.hostconfig"
AUTOREMOVE_ANNOTATION = "docker.autoremove"  # VIC's key
NETWORKING_ANNOTATION = "docker.networkingconfig"


def encode_annotation(value: Any) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_annotation(annotations: dict[str, str], key: str, default: Any = None) -> Any:
    blob = annotations.get(key)
    if not blob:
        return default
    try:
        return json.loads(base64.b64decode(blob))
    except ValueError:
        return default


# -- create: the container's config from the request and the image (moby daemon/commit.go merge) ------------------
def as_list(value: Any) -> list[str] | None:
    """Cmd/Entrypoint may come as a string (old clients) or a list; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def merge_image_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """The container config Docker stores: the user's, completed from the image's."""
    out = dict(user)
    if not out.get("User"):
        out["User"] = image.get("User") or ""
    ports = dict(image.get("ExposedPorts") or {})
    ports.update(out.get("ExposedPorts") or {})
    out["ExposedPorts"] = ports or None
    user_env = list(out.get("Env") or [])
    if not user_env:
        out["Env"] = list(image.get("Env") or [])
    else:
        keys = {e.split("=", 1)[0] for e in user_env}
        out["Env"] = user_env + [e for e in image.get("Env") or [] if e.split("=", 1)[0] not in keys]
    labels = dict(image.get("Labels") or {})
    labels.update(out.get("Labels") or {})
    out["Labels"] = labels
    entrypoint = as_list(out.get("Entrypoint"))
    cmd = as_list(out.get("Cmd"))
    if not entrypoint:
        if not cmd:
            cmd = as_list(image.get("Cmd"))
        if entrypoint is None:
            entrypoint = as_list(image.get("Entrypoint"))
    out["Entrypoint"] = entrypoint
    out["Cmd"] = cmd
    if not out.get("WorkingDir"):
        out["WorkingDir"] = image.get("WorkingDir") or ""
    volumes = dict(image.get("Volumes") or {})
    volumes.update(out.get("Volumes") or {})
    out["Volumes"] = volumes or None
    if not out.get("StopSignal") and image.get("StopSignal"):
        out["StopSignal"] = image["StopSignal"]
    if not out.get("OnBuild"):
        out["OnBuild"] = image.get("OnBuild")
    if out.get("Healthcheck") is None and image.get("Healthcheck") is not None:
        out["Healthcheck"] = image["Healthcheck"]
    return out


def image_container_config(image: Any) -> dict[str, Any]:
    """The image's container config (`config` of the image config JSON, or the dict itself)."""
    config = getattr(image, "config", None) or {}
    inner = config.get("config") if isinstance(config, dict) else None
    if isinstance(inner, dict):
        return inner
    return config if isinstance(config, dict) else {}


CONFIG_KEYS = ("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
               "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes",
               "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal",
               "StopTimeout", "Shell")

DEFAULT_CONFIG: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False,
    "AttachStderr": False, "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
    "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": {},
}

DEFAULT_HOST_CONFIG: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None, "ConsoleSize": [0, 0], "CapAdd": None,
    "CapDrop": None, "CgroupnsMode": "private", "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": None,
    "GroupAdd": None, "IpcMode": "private", "Cgroup": "", "Links": None, "OomScoreAdj": 0, "PidMode": "",
    "Privileged": False, "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": 67108864, "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 0,
    "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": [],
    "BlkioDeviceWriteBps": [], "BlkioDeviceReadIOps": [], "BlkioDeviceWriteIOps": [], "CpuPeriod": 0, "CpuQuota": 0,
    "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": [],
    "DeviceCgroupRules": None, "DeviceRequests": None, "MemoryReservation": 0, "MemorySwap": 0,
    "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None, "Ulimits": [], "CpuCount": 0,
    "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}


def stored_config(body: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """The Config part of a create body, merged with the image's, as kept in the annotations."""
    user = {k: body[k] for k in CONFIG_KEYS if k in body}
    return merge_image_config(user, image)


def stored_host_config(body: dict[str, Any]) -> dict[str, Any]:
    host = body.get("HostConfig")
    return dict(host) if isinstance(host, dict) else {}


# -- inspect ---------------------------------------------------------------------------------------------------------
def human_duration(seconds: float) -> str:
    """go-units HumanDuration, as `docker ps` shows ages."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(info: ContainerInfo, now_ns: int | None = None) -> str:
    """Docker's State.String(): `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, …"""
    now = now_ns if now_ns is not None else time.time_ns()
    state = info.state.docker
    if state == "running":
        started = info.started_ns or info.created_ns
        return f"Up {human_duration(max(0, now - started) / 1e9)}"
    if state == "paused":
        started = info.started_ns or info.created_ns
        return f"Up {human_duration(max(0, now - started) / 1e9)} (Paused)"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    if state == "created" or not (info.started_ns or info.finished_ns):
        return "Created"
    finished = info.finished_ns or info.started_ns
    return f"Exited ({info.exit_code}) {human_duration(max(0, now - finished) / 1e9)} ago"


def state_json(info: ContainerInfo) -> dict[str, Any]:
    docker = info.state.docker
    return {
        "Status": docker, "Running": docker == "running", "Paused": docker == "paused", "Restarting": False,
        "OOMKilled": False, "Dead": docker == "dead", "Pid": 0, "ExitCode": info.exit_code, "Error": info.error,
        "StartedAt": rfc3339(info.started_ns), "FinishedAt": rfc3339(info.finished_ns),
    }


def command_of(info: ContainerInfo) -> tuple[str, list[str]]:
    """(Path, Args) of the primary process."""
    session = info.session
    if session is None:
        return "", []
    args = list(session.cmd.args)
    return session.cmd.path, args[1:] if args else []


def config_json(info: ContainerInfo) -> dict[str, Any]:
    stored = decode_annotation(info.annotations, CONFIG_ANNOTATION, {}) or {}
    out = copy.deepcopy(DEFAULT_CONFIG)
    out.update(stored)
    session = info.session
    if session is not None and not stored:
        # a container made by another persona: what the executor config knows
        path, args = command_of(info)
        out.update({"Cmd": [path, *args] if path else None, "Env": list(session.cmd.env) or None,
                    "WorkingDir": session.cmd.dir, "User": session.user, "Tty": session.tty,
                    "OpenStdin": session.open_stdin})
    if not out.get("Hostname"):
        out["Hostname"] = info.config.hostname or info.id[:12]
    if not out.get("Domainname"):
        out["Domainname"] = info.config.domainname
    out["Image"] = out.get("Image") or info.repo
    labels = out.get("Labels")
    if not labels:
        labels = decode_annotation(info.annotations, LABELS_ANNOTATION, {}) or {}
    out["Labels"] = labels
    return out


def host_config_json(info: ContainerInfo) -> dict[str, Any]:
    stored = decode_annotation(info.annotations, HOSTCONFIG_ANNOTATION, {}) or {}
    out = copy.deepcopy(DEFAULT_HOST_CONFIG)
    out.update({k: v for k, v in stored.items() if v is not None or k not in out})
    log_config = out.get("LogConfig") or {}
    if not log_config.get("Type"):
        # docker-py and the CLI's `docker logs` need a log driver; VIC forces json-file too
        out["LogConfig"] = {"Type": "json-file", "Config": log_config.get("Config") or {}}
    if not out.get("NetworkMode"):
        out["NetworkMode"] = "default"
    out["Memory"] = out.get("Memory") or info.snapshot.memory_mb * 1024 * 1024
    if not out.get("RestartPolicy"):
        out["RestartPolicy"] = {"Name": "no", "MaximumRetryCount": 0}
    return out


def network_settings_json(info: ContainerInfo) -> dict[str, Any]:
    return {
        "Bridge": "", "SandboxID": "", "SandboxKey": "", "Ports": {}, "HairpinMode": False,
        "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None, "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
        "Networks": {},
    }


def inspect_json(info: ContainerInfo, driver: str) -> dict[str, Any]:
    """`GET /containers/{id}/json`."""
    path, args = command_of(info)
    folder = info.snapshot.datastore_folder
    return {
        "Id": info.id, "Created": rfc3339(info.created_ns), "Path": path, "Args": args, "State": state_json(info),
        "Image": info.image_id, "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
        "LogPath": str(folder.join("output.log")) if folder is not None else "", "Name": "/" + info.name,
        "RestartCount": info.restart_count, "Driver": driver, "Platform": "linux", "MountLabel": "",
        "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None, "HostConfig": host_config_json(info),
        "GraphDriver": {"Data": None, "Name": driver}, "Mounts": mounts_json(info), "Config": config_json(info),
        "NetworkSettings": network_settings_json(info),
    }


def mounts_json(info: ContainerInfo) -> list[dict[str, Any]]:
    from .volumes import mounts_json as volume_mounts
    return volume_mounts(info)


def summary_json(info: ContainerInfo, *, size: bool = False, now_ns: int | None = None) -> dict[str, Any]:
    """One entry of `GET /containers/json`."""
    path, args = command_of(info)
    config = config_json(info)
    host = decode_annotation(info.annotations, HOSTCONFIG_ANNOTATION, {}) or {}
    out = {
        "Id": info.id, "Names": ["/" + info.name], "Image": config.get("Image") or info.repo,
        "ImageID": info.image_id, "Command": " ".join([path, *args]).strip(), "Created": info.created_ns // 10 ** 9,
        "Ports": [], "Labels": config.get("Labels") or {}, "State": info.state.docker,
        "Status": status_text(info, now_ns), "HostConfig": {"NetworkMode": host.get("NetworkMode") or "default"},
        "NetworkSettings": {"Networks": {}}, "Mounts": mounts_json(info),
    }
    if size:
        out["SizeRw"] = 0
        out["SizeRootFs"] = 0
    return out


__all__ = ["encode_annotation", "decode_annotation", "merge_image_config", "image_container_config",
           "stored_config", "stored_host_config", "inspect_json", "summary_json", "status_text", "human_duration",
           "CONFIG_ANNOTATION", "HOSTCONFIG_ANNOTATION", "AUTOREMOVE_ANNOTATION"]
