"""What vic-machine's commands do (VIC's `cmd/vic-machine/*` and `lib/install/management`), on top of `deploy.py`.

Each command takes an Operation, an `Output` (progress and messages) and what its flags said; it raises
`MachineError` for anything the user must hear about (one line, VIC's text where VIC has one, plus hints), which
`cli.py` prints before exiting 1. Nothing here parses argv or writes to the terminal directly.

Layout and identity are deploy.py's: a VCH is the VM named after it in the inventory folder of the same name, and
its configuration is that VM's extraConfig. The "VCH ID" vic-machine shows and takes (`--id`) is the appliance VM's
managed object id, as in VIC.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shlex
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors
from ..config import executor as executorconfig
from ..config import extraconfig
from ..config import vch as vchconfig
from ..trace import Operation
from ..vsphere import DatastorePath, Session, Target, option_dict, vim
from . import certs, deploy, flags
from . import version as versions
from .output import Output

COMPOSE_TLS_VERSION = "TLSv1_2"
_CONTAINER_VERSION_KEY = extraconfig.key_for(executorconfig.ExecutorConfig, "version", "plugin_version")


class MachineError(Exception):
    """A failure vic-machine reports and exits 1 on: `message` (one line), `hints` (info lines shown first) and
    `details` (more lines, shown with --debug)."""

    def __init__(self, message: str, *, hints: tuple[str, ...] | list[str] = (), details: str = ""):
        super().__init__(message)
        self.message = message
        self.hints = list(hints)
        self.details = details


# -- the target ----------------------------------------------------------------------------------------------------
@dataclass
class Connection:
    """How to reach vSphere: `--target`, `--user`, `--password`, `--thumbprint` (or their environment variables)."""
    target: flags.TargetURL
    user: str
    password: str
    thumbprint: str | None = None
    insecure: bool = False


def sha1_thumbprint(der: bytes) -> str:
    """`AB:CD:...`: a certificate's SHA-1 thumbprint as vSphere and VIC show it."""
    digest = hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - a thumbprint, not a security hash
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _peer_certificate(host: str, port: int, timeout: float = 10.0) -> bytes:
    context = ssl._create_unverified_context()  # noqa: S323 - reading the certificate we are about to judge
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def _trust_target(op: Operation, out: Output, conn: Connection, force: bool) -> Connection:
    """VIC's target validation: an https target whose certificate the system does not trust needs --thumbprint
    (or --force, which accepts it and pins its thumbprint)."""
    if conn.target.sdk_url.startswith("http://") or conn.thumbprint or conn.insecure:
        return conn
    from urllib.parse import urlsplit
    parts = urlsplit(conn.target.sdk_url)
    host, port = parts.hostname, parts.port or 443
    try:
        with socket.create_connection((host, port), timeout=10) as sock:
            with ssl.create_default_context().wrap_socket(sock, server_hostname=host):
                return conn
    except ssl.SSLCertVerificationError:
        pass
    except OSError as err:
        raise MachineError(f"Cannot reach vSphere at {conn.target.sdk_url}: {err.strerror or err}") from err
    try:
        thumbprint = sha1_thumbprint(_peer_certificate(host, port))
    except OSError as err:
        raise MachineError(f"Cannot reach vSphere at {conn.target.sdk_url}: {err.strerror or err}") from err
    if not force:
        raise MachineError(f"Failed to verify certificate for target={conn.target.host} (thumbprint={thumbprint})",
                           hints=[f"Specify --thumbprint={thumbprint} if this is the certificate you expect, "
                                  f"or --force to accept it"])
    out.warn(f"Accepting host {conn.target.host!r} thumbprint {thumbprint} due to --force")
    return dataclasses.replace(conn, thumbprint=thumbprint)


def open_session(op: Operation, out: Output, conn: Connection, *, force: bool = False,
                 compute_resource: str | None = None, datastore: str | None = None,
                 full: bool = False) -> Session:
    """A session on the target's datacenter (and, with `full`, its compute resource and datastore)."""
    conn = _trust_target(op, out, conn, force)
    target = Target(conn.target.sdk_url, conn.user, conn.password, insecure=conn.insecure,
                    thumbprint=conn.thumbprint or None, datacenter=conn.target.datacenter,
                    compute_resource=compute_resource or None, datastore=datastore, keepalive=None)
    try:
        session = Session.open(op, target)
    except errors.AuthenticationFailed as err:
        raise MachineError(f"Failed to log in to {conn.target.sdk_url} as {conn.user!r}: {_line(err)}") from err
    except errors.VicError as err:
        raise MachineError(f"Failed to connect to {conn.target.sdk_url}: {_line(err)}") from err
    try:
        if full:
            _populate(op, session)
        else:
            finder = session.finder
            session.datacenter = _with_suggestions(
                op, session, lambda: finder.datacenter(op, conn.target.datacenter), vim.Datacenter, "--target",
                "Failure finding dc")
            session.datacenter_path = finder.inventory_path(op, session.datacenter)
            session.vm_folder = session.call(op, getattr, session.datacenter, "vmFolder")
    except BaseException:
        session.close(op)
        raise
    return session


def _populate(op: Operation, session: Session) -> None:
    finder, target = session.finder, session.target
    session.datacenter = _with_suggestions(op, session, lambda: finder.datacenter(op, target.datacenter),
                                           vim.Datacenter, "--target", "Failure finding dc")
    session.datacenter_path = finder.inventory_path(op, session.datacenter)
    session.vm_folder = session.call(op, getattr, session.datacenter, "vmFolder")
    session.pool = _with_suggestions(op, session, lambda: finder.resource_pool(op, target.compute_resource,
                                                                               session.datacenter),
                                     vim.ComputeResource, "--compute-resource", "Failure finding compute resource")
    session.compute_resource = finder.owner(op, session.pool)
    session.datastore = _with_suggestions(op, session, lambda: finder.datastore(op, target.datastore,
                                                                                session.datacenter),
                                          vim.Datastore, "--image-store", "Failure finding datastore")


def _with_suggestions(op: Operation, session: Session, lookup, kind: type, flag: str, what: str):
    try:
        return lookup()
    except (errors.NotFound, errors.InvalidArgument) as err:
        try:
            names = [name for name, _ in session.finder.all(op, kind)]
        except errors.VicError:
            names = []
        hints = [f"Suggested values for {flag}: {', '.join(names)}"] if names else []
        raise MachineError(f"{what}: {_line(err)}", hints=hints) from err


def _line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]


# -- create --------------------------------------------------------------------------------------------------------
@dataclass
class CreateOptions:
    name: str = flags.DEFAULT_NAME
    compute_resource: str | None = None
    image_store: str | None = None  # "ds/path" as given
    volume_stores: dict[str, str] = field(default_factory=dict)  # label → "[ds] path"
    bridge_range: str = vchconfig.DEFAULT_BRIDGE_RANGE
    name_convention: str = ""
    docker_port: int | None = None
    no_tls: bool = False
    no_tlsverify: bool = False
    tls_ca: list[str] = field(default_factory=list)
    cert_path: str | None = None
    server_cert: str | None = None
    server_key: str | None = None
    cname: str | None = None
    timeout: float = 180.0
    force: bool = False
    debug: int = 0
    appliance_version: str | None = None  # a release of vic_ref.migration.RELEASES; None: the installer's


def create(op: Operation, out: Output, conn: Connection, opts: CreateOptions) -> deploy.VCH:
    out.info("### Installing VCH ####")
    out.debug(f"vic-machine version {versions.short_version(versions.installer_build())}")
    name = flags.check_name(opts.name)
    if opts.name_convention:
        flags.check_name_convention(opts.name_convention)
    image_ds, image_path = flags.datastore_path(opts.image_store) if opts.image_store else (None, "")

    out.step("Validating supplied configuration")
    conn = _trust_target(op, out, conn, opts.force)  # a thumbprint accepted here is the one the VCH pins
    session = open_session(op, out, conn, force=opts.force, compute_resource=opts.compute_resource,
                           datastore=image_ds, full=True)
    try:
        if image_ds is None:
            image_ds = session.call(op, getattr, session.datastore, "name")
            out.info(f"Using default datastore: {image_ds}")
        if deploy.find(op, session, name) is not None:
            raise MachineError(f"A VCH with the name \"{name}\" already exists. Please choose a different name "
                               f"before attempting another install")
        for label, store in opts.volume_stores.items():
            if vchconfig.is_nfs_store(store):
                continue  # VIC only puts an NFS store in the config: the port layer reaches it when it starts
            ds = DatastorePath.parse(store).datastore
            _with_suggestions(op, session, lambda ds=ds: session.finder.datastore(op, ds, session.datacenter),
                              vim.Datastore, "--volume-store", f"Failure finding datastore for volume store {label}")
        port = _docker_port(opts.docker_port)
        out.end_step()

        tls = certs.prepare(name, cert_path=opts.cert_path, no_tls=opts.no_tls, no_tlsverify=opts.no_tlsverify,
                            ca_files=opts.tls_ca, server_cert=opts.server_cert, server_key=opts.server_key,
                            cname=opts.cname, force=opts.force, log=lambda level, text: _log(out, level, text))

        compute_path = session.finder.inventory_path(op, session.pool)
        config = vchconfig.new_config(
            name, conn.target.sdk_url, conn.user, conn.password,
            image_store=flags.format_datastore_path(image_ds, image_path), datacenter=session.datacenter_path,
            compute_resource=compute_path, volume_stores=opts.volume_stores, bridge_ip_range=opts.bridge_range,
            port=port, host_cert=tls.host_cert, host_key=tls.host_key, ca_certs=tls.ca_certs,
            name_convention=opts.name_convention or vchconfig.DEFAULT_NAME_CONVENTION,
            insecure=conn.insecure, thumbprint=conn.thumbprint or "",
            debug=opts.debug)
        config.init = dataclasses.replace(config.init, version=versions.release_build(opts.appliance_version))
        if opts.appliance_version and opts.appliance_version != versions.installer_build().version:
            out.info(f"Deploying appliance version {opts.appliance_version} (data version "
                     f"{config.plugin_version})")
        try:
            vch = deploy.create(op, session, config, timeout=max(1.0, op.remaining() or opts.timeout),
                                ssl_context=tls.client_ssl_context(), progress=out.step)
        except errors.Timeout as err:
            raise MachineError(
                f"Creating VCH exceeded time limit of {flags.format_duration(opts.timeout)}. Please increase the "
                f"timeout using --timeout to accommodate for a busy vSphere target",
                hints=_slow_api_hints(name, config, tls), details=str(err)) from err
        except errors.Unavailable as err:
            raise MachineError(_line(err), hints=[f"The VCH is left in place: vic-machine delete --name {name} "
                                                  f"removes it"], details=str(err)) from err
        out.end_step()
        report_volume_stores(out, config, tls.client_ssl_context())
        out.info("Initialization of appliance successful")
        show_vch(out, vch, tls_setup=tls, cert_path=tls.cert_path if tls.verify_clients else None)
        out.info("Installer completed successfully")
        return vch
    finally:
        session.close(op)


def _docker_port(requested: int | None) -> int:
    from ..cli import free_port, port_free
    if requested is None:
        return free_port()
    if not port_free(requested):
        raise MachineError(f"--docker-port {requested}: the port is in use on {vchconfig.DEFAULT_LISTEN_ADDRESS}")
    return requested


def _log(out: Output, level: str, text: str) -> None:
    {"warn": out.warn, "error": out.error, "debug": out.debug}.get(level, out.info)(text)


def _slow_api_hints(name: str, config: vchconfig.VCHConfig, tls: certs.TLSSetup) -> list[str]:
    command, _env = docker_command(config, tls_setup=tls)
    return ["API may be slow to start - try to connect to API after a few minutes:",
            f"    Run command: {command}",
            "    If command succeeds, VCH is started. If command fails, VCH failed to install - see documentation "
            "for troubleshooting.",
            f"The VCH is left in place: vic-machine delete --name {name} removes it"]


# -- what a user needs to connect (VIC's ShowVCH / GetDockerAPICommand) --------------------------------------------
def docker_host(config: vchconfig.VCHConfig) -> str:
    address = config.docker.address
    if address in ("0.0.0.0", "::", ""):
        address = "127.0.0.1"
    return f"{address}:{config.docker.port}"


def docker_command(config: vchconfig.VCHConfig, *, tls_setup: certs.TLSSetup | None = None,
                   cert_path: Path | None = None) -> tuple[str, str]:
    """(the `docker -H ... info` command, the environment line) for a VCH, as VIC prints them."""
    host = docker_host(config)
    env: list[str] = []
    tls_args = ""
    if config.tls:
        if config.cert.ca_certs:
            if tls_setup is not None and tls_setup.client_key and tls_setup.ca_file:
                tls_args = (f' --tlsverify --tlscacert="{tls_setup.ca_file}" --tlscert="{tls_setup.client_cert}"'
                            f' --tlskey="{tls_setup.client_key}"')
            else:
                tls_args = " --tlsverify"
            env.append("DOCKER_TLS_VERIFY=1")
            if cert_path is not None and Path(cert_path).is_dir():
                env.append(f"DOCKER_CERT_PATH={_quote(str(Path(cert_path).resolve()))}")
        else:
            tls_args = " --tls"
    env.append(f"DOCKER_HOST={host}")
    env.append(f"COMPOSE_TLS_VERSION={COMPOSE_TLS_VERSION}")
    return f"docker -H {host}{tls_args} info", " ".join(env)


def _quote(value: str) -> str:
    return value if shlex.quote(value) == value else shlex.quote(value)


def show_vch(out: Output, vch: deploy.VCH, *, tls_setup: certs.TLSSetup | None = None,
             cert_path: Path | None = None, save_env: bool = True) -> None:
    config = vch.config
    out.info("")
    out.info(f"VCH ID: {vch.vm._moId}")
    out.info("")
    out.info(f"VCH Default Bridge Network Range: {config.network.bridge_ip_range}")
    command, env = docker_command(config, tls_setup=tls_setup, cert_path=cert_path)
    if config.tls and config.cert.ca_certs and (cert_path is None or not Path(cert_path).is_dir()):
        out.info("")
        out.warn("Unable to find valid client certs")
        out.warn("DOCKER_CERT_PATH must be provided in environment or certificates specified individually via CLI "
                 "arguments")
    out.info("")
    out.info("Docker environment variables:")
    out.info(env)
    env_dir = tls_setup.cert_path if tls_setup is not None else None
    if save_env and env_dir is not None and env_dir.is_dir():
        env_file = env_dir / f"{config.name}.env"
        try:
            env_file.write_text(env + "\n")
            out.info("")
            out.info(f"Environment saved in {env_file}")
        except OSError as err:
            out.debug(f"cannot write {env_file}: {err}")
    out.info("")
    out.info("Connect to docker:")
    out.info(command)


# -- finding VCHs --------------------------------------------------------------------------------------------------
def all_vchs(op: Operation, session: Session) -> list[deploy.VCH]:
    """Every VCH in the datacenter: a folder of the VM folder holding a VM of the same name with a VCH config."""
    children = session.retrieve_one(op, session.vm_folder, ["childEntity"]).get("childEntity") or []
    folders = [item.get("name") for item in session.retrieve(op, children, ["name"], ignore_missing=True)
               if isinstance(item.obj, vim.Folder)]
    found = []
    for name in sorted(folders):
        try:
            vch = deploy.find(op, session, name)
        except errors.NotFound:
            continue  # removed meanwhile
        if vch is not None and vch.config.id and vch.config.name == name:
            found.append(vch)
    return found


def find_vch(op: Operation, session: Session, name: str | None, vch_id: str | None) -> deploy.VCH:
    """The VCH named `name` or whose appliance VM is `vch_id`; MachineError (VIC's text) when there is none."""
    if vch_id:
        for vch in all_vchs(op, session):
            if vch.vm._moId == vch_id:
                return vch
        raise MachineError(f"Failed to get Virtual Container Host {vch_id}: no VCH with id {vch_id} in "
                           f"{session.datacenter_path}")
    vch = deploy.find(op, session, name)
    if vch is None or not vch.config.id:
        raise MachineError(f"Failed to get Virtual Container Host {name}: no VCH named \"{name}\" in "
                           f"{session.datacenter_path}/vm",
                           hints=["vic-machine ls lists the VCHs of a target"])
    return vch


def _pool_path(op: Operation, session: Session, vch: deploy.VCH) -> str:
    pool = session.retrieve_one(op, vch.vm, ["resourcePool"]).get("resourcePool")
    return session.finder.inventory_path(op, pool) if pool is not None else ""


# -- ls ------------------------------------------------------------------------------------------------------------
LS_HEADERS = ["ID", "PATH", "NAME", "VERSION", "UPGRADE STATUS"]


def list_vchs(op: Operation, out: Output, conn: Connection, *, compute_resource: str | None = None,
              force: bool = False) -> list[list[str]]:
    out.info("### Listing VCHs ####")
    session = open_session(op, out, conn, force=force)
    try:
        prefix = None
        if compute_resource:
            pool = _with_suggestions(op, session,
                                     lambda: session.finder.resource_pool(op, compute_resource, session.datacenter),
                                     vim.ComputeResource, "--compute-resource", "Failure finding compute resource")
            owner = session.finder.owner(op, pool)
            prefix = session.finder.inventory_path(op, owner)
        installer = versions.installer_build()
        rows = []
        for vch in all_vchs(op, session):
            path = _pool_path(op, session, vch)
            if prefix is not None and not (path == prefix or path.startswith(prefix + "/")):
                continue
            build = vch.config.init.version
            rows.append([vch.vm._moId, path, vch.name, versions.short_version(build),
                         versions.upgrade_status(installer, build)])
        out.table(LS_HEADERS, rows)
        return rows
    finally:
        session.close(op)


# -- inspect -------------------------------------------------------------------------------------------------------
def inspect(op: Operation, out: Output, conn: Connection, *, name: str | None, vch_id: str | None,
            cert_path: str | None = None, force: bool = False) -> deploy.VCH:
    out.info("### Inspecting VCH ####")
    session = open_session(op, out, conn, force=force)
    try:
        vch = find_vch(op, session, name, vch_id)
        config = vch.config
        installer = versions.installer_build()
        out.info("")
        out.info(f"Installer version: {versions.short_version(installer)}")
        out.info(f"VCH version: {versions.short_version(config.init.version)}")
        out.info("")
        out.info("VCH upgrade status:")
        for line in _upgrade_status_long(installer, config.init.version):
            out.info(line)
        out.info("")
        out.info(f"VCH name: {vch.name}")
        out.info(f"VCH UUID: {config.id}")
        out.info(f"VCH power state: {vch.power_state}")
        out.info(f"VCH path: {config.resources.folder}/{vch.name} (resource pool {_pool_path(op, session, vch)})")
        out.info(f"Image store: {config.storage.image_store}")
        if config.storage.volume_stores:
            out.info("Volume stores:")
            for label, store in sorted(config.storage.volume_stores.items()):
                out.info(f"    {label}: {store}")
        else:
            out.info("Volume stores: none")
        out.info(f"Container name convention: {config.container.name_convention}")
        out.info(f"Docker API endpoint: {'https' if config.tls else 'http'}://{docker_host(config)}")
        out.info(f"TLS: {_tls_summary(config)}")
        if vch.power_state != "poweredOn":
            raise MachineError(f"VCH is not powered on, state {vch.power_state}")
        found = find_client_certs(out, config, cert_path) if config.tls and config.cert.ca_certs else None
        show_vch(out, vch, cert_path=found, save_env=False)
        out.info("Completed successfully")
        return vch
    finally:
        session.close(op)


def _tls_summary(config: vchconfig.VCHConfig) -> str:
    if not config.tls:
        return "disabled (--no-tls): the Docker API is plain HTTP"
    if not config.cert.ca_certs:
        return "server certificate only (--no-tlsverify): clients are not authenticated"
    try:
        count = len(certs._load_certs(config.cert.ca_certs))
    except ValueError:
        count = 0
    return f"client certificates verified against {count} CA certificate{'s' if count != 1 else ''}"


def _upgrade_status_long(installer, build) -> list[str]:
    order = versions.compare(build, installer) if build is not None and build.version else None
    if order is None:
        return ["Unable to determine upgrade status: the VCH records no version"]
    if order == 0:
        return ["Installer has same version as VCH", "No upgrade available with this installer version"]
    if order < 0:
        return ["Upgrade available"]
    return ["Installer has older version than VCH", "No upgrade available with this installer version"]


def find_client_certs(out: Output, config: vchconfig.VCHConfig, cert_path: str | None) -> Path | None:
    """VIC's findCertPaths: the folder holding a client certificate (cert.pem, key.pem) the VCH's CAs accept."""
    if cert_path:
        out.info(f"--tls-cert-path supplied - only checking for certs in {cert_path}/")
        candidates = [Path(cert_path)]
    else:
        docker_dir = Path.home() / ".docker"
        out.info(f"--tls-cert-path not supplied - checking for certs in current directory, {config.name}/ and "
                 f"{docker_dir}/")
        candidates = [Path(config.name), Path("."), docker_dir]
    for path in candidates:
        if (path / certs.CLIENT_KEY).is_file() and certs.client_cert_issued_by(path / certs.CLIENT_CERT,
                                                                                config.cert.ca_certs):
            return path
    return None


# -- delete --------------------------------------------------------------------------------------------------------
def delete(op: Operation, out: Output, conn: Connection, *, name: str | None, vch_id: str | None,
           force: bool = False, timeout: float = 180.0) -> None:
    out.info("### Removing VCH ####")
    session = open_session(op, out, conn, force=force)
    try:
        vch = find_vch(op, session, name, vch_id)
        out.info("")
        out.info(f"VCH ID: {vch.vm._moId}")
        installer = versions.installer_build()
        build = vch.config.init.version
        if versions.compare(build, installer) != 0:
            text = (f"VCH version \"{versions.short_version(build)}\" is different than installer version "
                    f"{versions.short_version(installer)}")
            if not force:
                raise MachineError(f"{text}. Upgrade VCH before deleting or specify --force to force delete")
            out.warn(f"{text}. Force delete will attempt to remove everything related to the installed VCH")

        containers = _container_vms(op, session, vch)
        running = [item.get("name") for item in containers if item.get("runtime.powerState") != "poweredOff"]
        if running and not force:
            if len(running) > 1:
                for vm_name in running:
                    out.error(f"VM \"{vm_name}\" is powered on")
            message = f"VM \"{running[0]}\" is powered on" if len(running) == 1 else \
                f"{len(running)} container VMs are powered on"
            raise MachineError(message, hints=["Specify --force to force delete"])

        out.step("Removing VMs")
        if vch.power_state != "poweredOff":
            deploy.power_off(op, session, vch)  # first, so the VCH stops acting on its containers
        for item in containers:
            if item.get("runtime.powerState") != "poweredOff":
                try:
                    session.run_task(op, item.obj.PowerOffVM_Task)
                except errors.InvalidState:
                    pass  # it powered off by itself meanwhile
            _detach_disks(op, session, item.obj)  # volumes outlive their containers (VIC's DeleteExceptDisks)
        _volume_stores(op, out, session, vch, force)
        out.step("Removing appliance VM, images and the VCH folder")
        deploy.destroy(op, session, vch.name)
        out.end_step()
        out.info("Completed successfully")
    except errors.Timeout as err:
        raise MachineError("Delete timed out: use --timeout to add more time", details=str(err)) from err
    finally:
        session.close(op)


def _container_vms(op: Operation, session: Session, vch: deploy.VCH) -> list:
    items = session.retrieve_view(op, vch.folder, [vim.VirtualMachine],
                                  ["name", "runtime.powerState", "config.extraConfig"])
    return [item for item in items if item.obj._moId != vch.vm._moId
            and _CONTAINER_VERSION_KEY in option_dict(item.get("config.extraConfig"))]


def _detach_disks(op: Operation, session: Session, vm) -> None:
    devices = session.retrieve_one(op, vm, ["config.hardware.device"]).get("config.hardware.device") or []
    disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
    if not disks:
        return
    changes = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=disk) for disk in disks]
    session.run_task(op, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(deviceChange=changes))


def _volume_stores(op: Operation, out: Output, session: Session, vch: deploy.VCH, force: bool) -> None:
    """VIC's deleteVolumeStoreIfForced: kept (with a warning naming them) unless --force."""
    stores = vch.config.storage.volume_stores
    if not stores:
        return
    if not force:
        nfs = {label: store for label, store in stores.items() if vchconfig.is_nfs_store(store)}
        listing = "".join(f"\t{label}: {store}\n" for label, store in sorted(stores.items()) if label not in nfs)
        if nfs:
            nfs_listing = "".join(f"\t{label}: {store}\n" for label, store in sorted(nfs.items()))
            out.warn("Since --force was not specified, the following volume stores will not be removed. Use the "
                     "vSphere UI or supplied nfs targets to delete content you do not wish to keep.\n vsphere "
                     f"volumestores:\n{listing}\n NFS volumestores:\n{nfs_listing}\n")
        else:
            out.warn("Since --force was not specified, the following volume stores will not be removed. Use the "
                     f"vSphere UI to delete content you do not wish to keep.\n vsphere volumestores:\n{listing}")
        return
    out.step("Removing volume stores")
    files = session.content.fileManager
    for label, store in sorted(stores.items()):
        if vchconfig.is_nfs_store(store):
            # VIC leaves NFS stores alone: vic-machine need not be on a network that reaches them
            continue
        path = DatastorePath.parse(store)
        if not path.path:
            out.warn(f"Volume store {label!r} is the root of datastore {path.datastore}: not removed")
            continue
        out.info(f"Deleting volume store \"{label}\" on Datastore \"{path.datastore}\" at path \"{path.path}\"")
        try:
            session.run_task(op, files.DeleteDatastoreFile_Task, str(path), session.datacenter)
        except errors.NotFound:
            pass
        except errors.VicError as err:
            out.error(f"Failed to remove volume store {label!r} ({store}): {_line(err)}")


def report_volume_stores(out: Output, config: vchconfig.VCHConfig, ssl_context=None) -> None:
    """VIC's confirmVolumeStores: a store the port layer could not bring online is an error in the log, not a
    failure of the command (the VCH runs without it)."""
    missing = deploy.missing_volume_stores(config, ssl_context=ssl_context)
    for label in missing:
        out.error(f"VolumeStore ({label}) cannot be brought online - check network, nfs server, and --volume-store "
                  "configurations")
    if missing:
        out.error("Not all configured volume stores are online - check port layer log via vicadmin")


# -- version -------------------------------------------------------------------------------------------------------
def version_line(program: str = "vic-machine") -> str:
    """VIC's `vic-machine version`: `<program> version <version>-<build>-<commit>`."""
    return f"{program} version {versions.short_version(versions.installer_build())}"


__all__ = ["MachineError", "Connection", "CreateOptions", "create", "delete", "inspect", "list_vchs", "version_line",
           "open_session", "all_vchs", "find_vch", "docker_command", "show_vch", "sha1_thumbprint"]
