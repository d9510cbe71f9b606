"""Deploying a VCH appliance: what `vic-ref up` does now and `vic-machine create` / `delete` will build on.

Layout (VIC 1.5's, with VCH folders):
- inventory: the folder `<datacenter vm folder>/<vch name>` holds the appliance VM (display name = VCH name) and,
  later, the VCH's container VMs;
- datastore: `[ds] <vch name>/` on the image store's datastore holds the appliance VM's files, `appliance.iso`,
  `bootstrap.iso` and the appliance's console log `guest.log`;
- the VCH's configuration is the appliance VM's extraConfig (`vic_ref/config/vch.py`), nothing else.

Every call takes an Operation and a populated `Session` whose datacenter, pool and datastore are the VCH's; every
wait is bounded. Faults arrive as VicErrors.
"""
from __future__ import annotations

import dataclasses
import datetime
import http.client
import ipaddress
import json
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..config import vch as vchconfig
from ..config.vch import VCHConfig
from ..trace import Operation
from ..vsphere import DatastorePath, Session, Target, option_dict, option_values, vim
from . import isos

DEFAULT_BOOT_TIMEOUT = 60.0
APPLIANCE_GUEST_ID = "other3xLinux64Guest"
APPLIANCE_CPUS = 1
APPLIANCE_MEMORY_MB = 2048
GUEST_LOG = "guest.log"
# How often the readiness wait looks at vSphere (power state, the appliance's own report) between pings.
_STATE_EVERY = 0.5
_VM_PROPS = ["name", "runtime.powerState", "config.extraConfig", "config.files.vmPathName"]


# -- the deployed VCH -------------------------------------------------------------------------------------------
@dataclass
class VCH:
    """A deployed VCH as vSphere shows it."""
    config: VCHConfig
    vm: vim.VirtualMachine
    folder: vim.Folder
    vmx_path: DatastorePath
    power_state: str = "poweredOff"
    extra_config: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def home(self) -> DatastorePath:
        """The appliance VM's datastore folder (its ISOs and logs are there)."""
        return self.vmx_path.parent

    @property
    def guest_log(self) -> DatastorePath:
        """The appliance's console: everything the VCH logs."""
        return self.home.join(GUEST_LOG)

    @property
    def docker_host(self) -> str:
        return self.config.docker_host


def target_of(config: VCHConfig, **kwargs) -> Target:
    """The vSphere target a VCH config names (inventory paths included, "" meaning the only one there is)."""
    r = config.resources
    return Target(config.connection.target, config.connection.username, config.connection.token,
                  insecure=config.connection.insecure, thumbprint=config.connection.thumbprint or None,
                  datacenter=r.datacenter or None, compute_resource=r.compute_resource or None,
                  datastore=DatastorePath.parse(config.storage.image_store).datastore, **kwargs)


# -- lookup ------------------------------------------------------------------------------------------------------
def _children(op: Operation, session: Session, folder) -> list:
    refs = session.retrieve_one(op, folder, ["childEntity"]).get("childEntity") or []
    return session.retrieve(op, refs, ["name"], ignore_missing=True)


def _vch_folder(op: Operation, session: Session, name: str) -> vim.Folder | None:
    for item in _children(op, session, session.vm_folder):
        if isinstance(item.obj, vim.Folder) and item.get("name") == name:
            return item.obj
    return None


def _load(op: Operation, session: Session, vm, folder) -> VCH:
    props = session.retrieve_one(op, vm, _VM_PROPS)
    extra = option_dict(props.get("config.extraConfig"))
    return VCH(config=vchconfig.decode(extra), vm=vm, folder=folder,
               vmx_path=DatastorePath.parse(props["config.files.vmPathName"]),
               power_state=str(props.get("runtime.powerState")), extra_config=extra)


def find(op: Operation, session: Session, name: str) -> VCH | None:
    """The VCH named `name` (its folder and appliance VM), or None."""
    folder = _vch_folder(op, session, name)
    if folder is None:
        return None
    for item in _children(op, session, folder):
        if isinstance(item.obj, vim.VirtualMachine) and item.get("name") == name:
            return _load(op, session, item.obj, folder)
    return None


def refresh(op: Operation, session: Session, vch: VCH) -> VCH:
    return _load(op, session, vch.vm, vch.folder)


# -- create ------------------------------------------------------------------------------------------------------
def create(op: Operation, session: Session, config: VCHConfig, *, timeout: float = DEFAULT_BOOT_TIMEOUT,
           wait: bool = True, ssl_context: ssl.SSLContext | None = None,
           progress: Callable[[str], None] | None = None) -> VCH:
    """Deploy a new VCH: folders, ISOs, the appliance VM with its config; power it on and (with `wait`) wait until
    its Docker API answers `/_ping`. AlreadyExists when a VCH of that name exists. `progress(step)` hears of each
    step as it begins (vic-machine shows them)."""
    step = progress or (lambda _text: None)
    op = op.child(f"create VCH {config.name}")
    if find(op, session, config.name) is not None:
        raise errors.AlreadyExists(f"a VCH named {config.name!r} already exists", op_id=op.id)
    started = time.monotonic()
    step(f"Creating directory {DatastorePath(DatastorePath.parse(config.storage.image_store).datastore, config.name)}")
    ds_folder = _prepare_datastore(op, session, config)
    config = _complete(op, session, config, ds_folder)
    config.validate()
    step("Uploading images for container")
    _upload_isos(op, session, config, ds_folder)
    step("Creating appliance on target")
    folder = _ensure_folder(op, session, config.name)
    cdrom = vim.vm.device.VirtualCdrom(
        key=-1, controllerKey=200, unitNumber=0,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=str(ds_folder.join(isos.APPLIANCE_ISO))),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True,
                                                            allowGuestControl=False))
    spec = vim.vm.ConfigSpec(
        name=config.name, guestId=APPLIANCE_GUEST_ID, numCPUs=APPLIANCE_CPUS, memoryMB=APPLIANCE_MEMORY_MB,
        annotation=f"vic-ref VCH {config.name} ({config.id})",
        files=vim.vm.FileInfo(vmPathName=str(ds_folder)),
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=cdrom)],
        extraConfig=option_values(vchconfig.encode(config)))
    vm = session.run_task(op, folder.CreateVM_Task, config=spec, pool=session.pool)
    op.info("created appliance VM %s (%s) in %s in %.2fs", config.name, vm._moId, config.resources.folder,
            time.monotonic() - started)
    vch = _load(op, session, vm, folder)
    step("Powering on the appliance")
    power_on(op, session, vch)
    if wait:
        step("Waiting for major appliance components to launch")
        wait_ready(op, session, vch, timeout=timeout, ssl_context=ssl_context)
    return refresh(op, session, vch)


def _complete(op: Operation, session: Session, config: VCHConfig, ds_folder: DatastorePath) -> VCHConfig:
    """Fill in what the target decides: inventory paths and the bootstrap ISO's path."""
    config = dataclasses.replace(config)
    config.resources = dataclasses.replace(
        config.resources,
        datacenter=config.resources.datacenter or session.datacenter_path or "",
        folder=f"{session.finder.inventory_path(op, session.vm_folder)}/{config.name}")
    config.container = dataclasses.replace(
        config.container,
        bootstrap_image_path=config.container.bootstrap_image_path or str(ds_folder.join(isos.BOOTSTRAP_ISO)))
    return config


def _prepare_datastore(op: Operation, session: Session, config: VCHConfig) -> DatastorePath:
    """The VCH's datastore folder `[ds] <name>` (a namespace on vSAN), created if missing."""
    ds_name = DatastorePath.parse(config.storage.image_store).datastore
    datastore = session.datastore
    if datastore is None or session.call(op, getattr, datastore, "name") != ds_name:
        datastore = session.finder.datastore(op, ds_name, session.datacenter)
    folder = DatastorePath(ds_name, config.name)
    kind = session.retrieve_one(op, datastore, ["summary.type"]).get("summary.type")
    try:
        if kind == "vsan":
            manager = session.content.datastoreNamespaceManager
            session.call(op, manager.CreateDirectory, datastore, displayName=config.name)
        else:
            session.call(op, session.content.fileManager.MakeDirectory, str(folder), session.datacenter, True)
    except errors.AlreadyExists:
        pass  # left by an earlier deployment: reused
    return folder


def _upload_isos(op: Operation, session: Session, config: VCHConfig, ds_folder: DatastorePath,
                 appliance: DatastorePath | None = None) -> None:
    """The appliance ISO (at `appliance`, default `<folder>/appliance.iso`) and the bootstrap ISO (where the config
    says new containers boot from), both of the config's version."""
    session.upload(op, appliance or ds_folder.join(isos.APPLIANCE_ISO), isos.appliance_iso(config.version))
    bootstrap = config.container.bootstrap_image_path
    session.upload(op, DatastorePath.parse(bootstrap) if bootstrap else ds_folder.join(isos.BOOTSTRAP_ISO),
                   isos.bootstrap_iso(config.version))


def cdrom(op: Operation, session: Session, vm) -> vim.vm.device.VirtualCdrom | None:
    """The appliance VM's CD-ROM (the appliance ISO it boots)."""
    devices = session.retrieve_one(op, vm, ["config.hardware.device"]).get("config.hardware.device") or []
    return next((d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)), None)


def appliance_iso_path(op: Operation, session: Session, vch: VCH) -> DatastorePath | None:
    """The ISO the appliance VM boots, as its CD-ROM names it."""
    device = cdrom(op, session, vch.vm)
    name = getattr(device.backing, "fileName", "") if device is not None else ""
    return DatastorePath.parse(name) if name else None


def _ensure_folder(op: Operation, session: Session, name: str) -> vim.Folder:
    try:
        return session.call(op, session.vm_folder.CreateFolder, name)
    except errors.AlreadyExists:
        folder = _vch_folder(op, session, name)
        if folder is None:  # a VM of that name, not a folder
            raise
        return folder


# -- reuse -------------------------------------------------------------------------------------------------------
def ensure(op: Operation, session: Session, config: VCHConfig, *, timeout: float = DEFAULT_BOOT_TIMEOUT,
           ssl_context: ssl.SSLContext | None = None) -> VCH:
    """The VCH named in `config`, up and answering: created if missing; if it exists its identity (id) is kept, its
    settings are brought to `config` (a power cycle when they differ), and it is powered on if it is off."""
    op = op.child(f"ensure VCH {config.name}")
    vch = find(op, session, config.name)
    if vch is None:
        return create(op, session, config, timeout=timeout, ssl_context=ssl_context)
    ds_folder = vch.home
    desired = _complete(op, session, config, ds_folder)
    # the VCH keeps its identity, its release (ensure never upgrades: vic-machine upgrade does) and its ISOs
    desired.init = dataclasses.replace(desired.init, common=dataclasses.replace(desired.init.common, id=vch.id),
                                       sessions={}, version=vch.config.init.version)
    if vch.config.container.bootstrap_image_path:
        desired.container = dataclasses.replace(desired.container,
                                                bootstrap_image_path=vch.config.container.bootstrap_image_path)
    current = dataclasses.replace(vch.config, init=dataclasses.replace(vch.config.init, sessions={}))
    desired.validate()
    # the code they point at may have moved: rewrite the ISOs this VCH boots, at their version
    _upload_isos(op, session, desired, ds_folder, appliance_iso_path(op, session, vch))
    if desired != current:
        op.info("VCH %s: settings changed; reconfiguring the appliance", config.name)
        if vch.power_state == "poweredOn":
            power_off(op, session, vch)
        secret = vchconfig.secret_key_of(vch.extra_config)
        changes = vchconfig.diff(vch.extra_config, vchconfig.encode(desired, secret))
        session.run_task(op, vch.vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(extraConfig=option_values(changes)))
        vch = refresh(op, session, vch)
    if vch.power_state != "poweredOn":
        power_on(op, session, vch)
    wait_ready(op, session, vch, timeout=timeout, ssl_context=ssl_context)
    return refresh(op, session, vch)


# -- power -------------------------------------------------------------------------------------------------------
def power_on(op: Operation, session: Session, vch: VCH) -> None:
    """Power the appliance on, first clearing what the previous boot reported (so a stale error isn't read as
    this boot's)."""
    stale = vchconfig.session_started_key()
    if vch.extra_config.get(stale):
        session.run_task(op, vch.vm.ReconfigVM_Task,
                         spec=vim.vm.ConfigSpec(extraConfig=option_values({stale: ""})))
        vch.extra_config.pop(stale, None)
    try:
        session.run_task(op, vch.vm.PowerOnVM_Task)
    except errors.InvalidState:
        if _power_state(op, session, vch) != "poweredOn":
            raise
    vch.power_state = "poweredOn"
    op.info("VCH %s powered on", vch.name)


def power_off(op: Operation, session: Session, vch: VCH) -> None:
    """Power the appliance off (the VCH stops; its containers are left as they are)."""
    try:
        session.run_task(op, vch.vm.PowerOffVM_Task)
    except errors.InvalidState:
        if _power_state(op, session, vch) != "poweredOff":
            raise
    vch.power_state = "poweredOff"
    op.info("VCH %s powered off", vch.name)


def _power_state(op: Operation, session: Session, vch: VCH) -> str:
    return str(session.retrieve_one(op, vch.vm, ["runtime.powerState"]).get("runtime.powerState"))


# -- readiness ---------------------------------------------------------------------------------------------------
def ping(config: VCHConfig, *, timeout: float = 1.0, ssl_context: ssl.SSLContext | None = None) -> bool:
    """Whether the VCH's Docker API answers `GET /_ping` with 200 OK."""
    host, port = config.docker.address, config.docker.port
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if config.tls:
        context = ssl_context or _unverified_context()
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/_ping")
        reply = conn.getresponse()
        body = reply.read(64)
        return reply.status == 200 and body.strip() == b"OK"
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def missing_volume_stores(config: VCHConfig, *, timeout: float = 10.0,
                          ssl_context: ssl.SSLContext | None = None) -> list[str]:
    """The configured volume stores the VCH's `docker info` does not list as established (VIC's
    confirmVolumeStores); [] when all are there or the answer can't be had (a client certificate is needed)."""
    host, port = config.docker.address, config.docker.port
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if config.tls and config.cert.ca_certs and ssl_context is None:
        return []
    if config.tls:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=timeout, context=ssl_context or _unverified_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/info")
        reply = conn.getresponse()
        info = json.loads(reply.read()) if reply.status == 200 else {}
    except (OSError, http.client.HTTPException, ValueError):
        return []
    finally:
        conn.close()
    line = next((value for key, value in info.get("SystemStatus") or [] if key == "VolumeStores"), "")
    established = set(line.split())
    return sorted(label for label in config.storage.volume_stores if label not in established)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_ready(op: Operation, session: Session, vch: VCH, *, timeout: float = DEFAULT_BOOT_TIMEOUT,
               ssl_context: ssl.SSLContext | None = None) -> float:
    """Wait until the VCH answers `/_ping`; the seconds it took. Fails early, with the appliance's log, when the
    appliance reports an error or its VM powers off; Timeout (with the log) after `timeout` seconds."""
    started = time.monotonic()
    deadline = started + timeout
    next_state = started + _STATE_EVERY
    needs_client_cert = vch.config.tls and bool(vch.config.cert.ca_certs) and ssl_context is None
    while True:
        op.check()
        if not needs_client_cert and ping(vch.config, ssl_context=ssl_context):
            took = time.monotonic() - started
            op.info("VCH %s answers on %s after %.2fs", vch.name, vch.docker_host, took)
            return took
        now = time.monotonic()
        if now >= next_state or needs_client_cert:
            next_state = now + _STATE_EVERY
            fresh = refresh(op, session, vch)
            report = fresh.extra_config.get(vchconfig.session_started_key(), "")
            if report == "true" and needs_client_cert:
                # TLS with client verification and no client certificate to ping with: the appliance's own word
                return time.monotonic() - started
            if report not in ("", "true", "<nil>"):
                raise errors.Unavailable(_failure(op, session, vch, f"the appliance failed to start: {report}"),
                                         op_id=op.id)
            if fresh.power_state != "poweredOn":
                raise errors.Unavailable(_failure(op, session, vch, "the appliance VM powered off during boot"),
                                         op_id=op.id)
        if now >= deadline:
            raise errors.Timeout(_failure(op, session, vch, f"the VCH did not answer GET /_ping on "
                                                            f"{vch.docker_host} within {timeout:g}s"), op_id=op.id)
        time.sleep(0.05)


def _failure(op: Operation, session: Session, vch: VCH, what: str) -> str:
    return f"VCH {vch.name}: {what}; the appliance's log is {vch.guest_log}{_log_tail(op, session, vch)}"


def _log_tail(op: Operation, session: Session, vch: VCH, lines: int = 20) -> str:
    try:
        text = session.download(op, vch.guest_log).decode("utf-8", "replace")
    except errors.VicError:
        return ""
    tail = text.rstrip("\n").splitlines()[-lines:]
    return ("; its last lines:\n" + "\n".join(f"  | {line}" for line in tail)) if tail else ""


# -- destroy -----------------------------------------------------------------------------------------------------
def destroy(op: Operation, session: Session, name: str, *, keep_images: bool = False) -> None:
    """Remove the VCH `name`: power off and destroy its appliance and container VMs, its folder, its datastore
    folder and (unless `keep_images`) its image store `<image store>/VIC/<id>`. Volume stores are kept.
    NotFound when there is no such VCH."""
    op = op.child(f"destroy VCH {name}")
    folder = _vch_folder(op, session, name)
    if folder is None:
        raise errors.NotFound(f"no VCH named {name!r}", op_id=op.id)
    vch = find(op, session, name)
    vms = session.retrieve_view(op, folder, [vim.VirtualMachine],
                                ["name", "runtime.powerState", "config.files.vmPathName"])
    # the appliance first, so it stops acting on its containers
    vms.sort(key=lambda item: vch is None or item.obj._moId != vch.vm._moId)
    for item in vms:
        if item.get("runtime.powerState") == "poweredOn":
            try:
                session.run_task(op, item.obj.PowerOffVM_Task)
            except errors.InvalidState:
                pass  # it powered off by itself meanwhile
    session.run_task(op, folder.Destroy_Task)  # its VMs and the files vSphere knows of go with it
    # What vSphere doesn't know of (a guest's console log, files the VCH put there) keeps a VM's folder: remove it.
    targets = [DatastorePath.parse(item.get("config.files.vmPathName")).parent for item in vms
               if item.get("config.files.vmPathName")]
    if vch is not None:
        targets.append(vch.home)
        if not keep_images:
            targets.append(DatastorePath.parse(vch.config.storage.image_store).join("VIC", vch.id))
    files = session.content.fileManager
    for path in dict.fromkeys(targets):
        if not path.path:
            continue  # never a datastore's root
        try:
            session.run_task(op, files.DeleteDatastoreFile_Task, str(path), session.datacenter)
        except errors.NotFound:
            pass
    op.info("VCH %s removed (%d VMs)", name, len(vms))


# -- TLS material ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TLSFiles:
    """What `docker --tlsverify` needs (`DOCKER_CERT_PATH`: ca.pem, cert.pem, key.pem) and the server's side."""
    cert_path: Path
    ca_cert: bytes
    server_cert: bytes
    server_key: bytes

    def client_ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_cert.decode("ascii"))
        context.load_cert_chain(str(self.cert_path / "cert.pem"), str(self.cert_path / "key.pem"))
        return context


def make_tls(cert_path: str | Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TLSFiles:
    """A CA, a server certificate for `hosts` and a client certificate, in `cert_path` (reused when there)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_path = Path(cert_path)
    names = ("ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "cert.pem", "key.pem")
    if all((cert_path / n).is_file() for n in names):
        return TLSFiles(cert_path, (cert_path / "ca.pem").read_bytes(), (cert_path / "server-cert.pem").read_bytes(),
                        (cert_path / "server-key.pem").read_bytes())
    cert_path.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    later = now + datetime.timedelta(days=3650)

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())

    def issue(subject: str, key, issuer_name, issuer_key, *, ca: bool, usage=None, sans=None):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(issuer_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(later)
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if usage:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vic-ref CA")])
    ca = issue("vic-ref CA", ca_key, ca_name, ca_key, ca=True)
    sans = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issue(hosts[0], server_key, ca_name, ca_key, ca=False, usage=[ExtendedKeyUsageOID.SERVER_AUTH],
                   sans=sans)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = issue("vic-ref client", client_key, ca_name, ca_key, ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    pem = serialization.Encoding.PEM
    files = {"ca.pem": ca.public_bytes(pem), "ca-key.pem": pem_key(ca_key),
             "server-cert.pem": server.public_bytes(pem), "server-key.pem": pem_key(server_key),
             "cert.pem": client.public_bytes(pem), "key.pem": pem_key(client_key)}
    for name, data in files.items():
        path = cert_path / name
        path.write_bytes(data)
        os.chmod(path, 0o600 if name.endswith("key.pem") else 0o644)
    return TLSFiles(cert_path, files["ca.pem"], files["server-cert.pem"], files["server-key.pem"])


__all__ = ["VCH", "TLSFiles", "create", "ensure", "cdrom", "appliance_iso_path",
           "find", "refresh", "destroy", "power_on", "power_off", "ping",
           "wait_ready", "target_of", "make_tls", "DEFAULT_BOOT_TIMEOUT"]
