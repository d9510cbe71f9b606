"""`/_ping`, `/version`, `/info` (VIC's SystemBackend, with what the docker CLI 28 and docker-py 7.2 read).

`/_ping` answers HEAD and GET, with or without a version prefix, with the headers the CLI negotiates from
(`Api-Version`, `Ostype`, `Docker-Experimental`, `Builder-Version`, `Swarm`); `docker info` needs
`Swarm.LocalNodeState` to be `inactive`.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
import threading
from typing import Any

from aiohttp import web

from .. import errors
from . import common
from .common import API_VERSION, MIN_API_VERSION, PRODUCT, add_route, call, portlayer

PING_HEADERS = {
    "Api-Version": API_VERSION,
    "Builder-Version": "1",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Swarm": "inactive",
}


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine or "amd64")


def engine_version(config) -> str:
    version = getattr(config, "version", "") or "0.0.0"
    return version[1:] if version.startswith("v") else version


def backend_name(config) -> str:
    """VIC's port layer name, shown as the storage driver: `vSphere Integrated Containers v<ver> Backend Engine`."""
    return f"{PRODUCT} v{engine_version(config)} Backend Engine"


async def ping(request: web.Request) -> web.Response:
    body = b"" if request.method == "HEAD" else b"OK"
    return web.Response(body=body, content_type="text/plain", charset="utf-8", headers=PING_HEADERS)


def version_info(config) -> dict[str, Any]:
    ver = engine_version(config)
    build = getattr(getattr(config, "init", None), "version", None)
    commit = (build.git_commit if build is not None else "") or ""
    build_time = (build.build_date if build is not None else "") or ""
    python = f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": commit,
               "GoVersion": python, "Os": "linux", "Arch": arch(), "KernelVersion": "-", "BuildTime": build_time,
               "Experimental": "false"}
    return {
        "Platform": {"Name": PRODUCT},
        "Components": [{"Name": "Engine", "Version": ver, "Details": details}],
        "Version": ver, "ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "GitCommit": commit,
        "GoVersion": python, "Os": "linux", "Arch": arch(), "KernelVersion": "-", "BuildTime": build_time,
    }


async def version(request: web.Request) -> web.Response:
    return web.json_response(version_info(request.app[common.CONFIG]))


def established_volume_stores(op, pl) -> list[str]:
    """The stores the port layer could bring online (vic-machine checks this line for each configured store)."""
    volumes = getattr(pl, "volumes", None)
    if volumes is None:
        return []
    try:
        return volumes.stores(op)
    except errors.VicError as err:
        op.warning("info: volume stores: %s", err)
        return []


def info_of(op, pl, config) -> dict[str, Any]:
    """`docker info`: container counts from the cache, images from the image store, the VCH's identity."""
    infos = pl.exec.list()
    running = sum(1 for i in infos if i.running and i.state.docker == "running")
    paused = sum(1 for i in infos if i.state.docker == "paused")
    images = 0
    storage = getattr(pl, "storage", None)
    if storage is not None and hasattr(storage, "list"):
        try:
            images = len(storage.list(op))
        except errors.VicError as err:
            op.warning("info: image count: %s", err)
    about = pl.session.about if getattr(pl, "session", None) is not None else None
    host_os = about.fullName if about is not None else "VMware vSphere"
    driver = backend_name(config)
    volume_stores = " ".join(established_volume_stores(op, pl))
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    return {
        "ID": config.id, "Containers": len(infos), "ContainersRunning": running, "ContainersPaused": paused,
        "ContainersStopped": len(infos) - running - paused, "Images": images,
        "Driver": driver, "DriverStatus": [],
        "SystemStatus": [["VolumeStores", volume_stores], [driver, "RUNNING"], [" VMware Product", host_os],
                         [" Registry Whitelist Mode", "disabled.  All registry access allowed."]],
        "Plugins": {"Volume": ["vsphere"] if volume_stores else [], "Network": ["bridge"], "Authorization": None,
                    "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "KernelMemory": True, "KernelMemoryTCP": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": True, "PidsLimit": False,
        "IPv4Forwarding": True, "BridgeNfIptables": True, "BridgeNfIp6tables": True, "Debug": bool(config.init.debug),
        "NFd": 0, "OomKillDisable": True, "NGoroutines": threading.active_count(), "SystemTime": now,
        "LoggingDriver": "json-file", "CgroupDriver": "", "CgroupVersion": "", "NEventsListener":
            pl.events.subscribers, "KernelVersion": "", "OperatingSystem": host_os, "OSVersion": "",
        "OSType": "linux", "Architecture": platform.machine() or "x86_64",
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames":
                           None, "InsecureRegistryCIDRs": [], "IndexConfigs": {}, "Mirrors": []},
        "NCPU": os.cpu_count() or 1, "MemTotal": _mem_total(), "GenericResources": None, "DockerRootDir": "",
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": config.name, "Labels": [],
        "ExperimentalBuild": False, "ServerVersion": engine_version(config),
        "Runtimes": {}, "DefaultRuntime": "", "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                                                        "ControlAvailable": False, "Error": "",
                                                        "RemoteManagers": None},
        "LiveRestoreEnabled": False, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": [], "Warnings": None,
    }


def _mem_total() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


async def info(request: web.Request) -> web.Response:
    body = await call(request, info_of, portlayer(request), request.app[common.CONFIG])
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/_ping", ping)
    add_route(app, "HEAD", "/_ping", ping)
    add_route(app, "GET", "/version", version)
    add_route(app, "GET", "/info", info)


__all__ = ["add_routes", "version_info", "info_of", "backend_name", "engine_version", "PING_HEADERS"]
