"""vic-machine upgrade, rollback and configure (VIC's `cmd/vic-machine/upgrade`, `configure` and
`lib/install/management/configure.go`).

All three change only the appliance VM; container VMs keep their data, their data version and their bootstrap ISO.
One sequence serves upgrade and configure (as in VIC):
1. the in-progress flag `UpdateInProgress` (a bare, guest-invisible extraConfig key, VIC's) is set with the VM's
   changeVersion, so of two concurrent runs exactly one wins; the other is refused with VIC's text;
2. (upgrade) the new appliance and bootstrap ISOs are uploaded beside the old ones (`appliance-<version>.iso`);
3. a snapshot `upgrade for <version>` / `reconfigure for <version>` is taken (config only in the sim: CD-ROM,
   extraConfig, power state);
4. the appliance is powered off, its CD-ROM switched to the new ISO and its guestinfo rewritten (the config migrated
   to the current data version, `vic_ref.migration`), powered on, and the Docker API waited for;
5. on any failure, or when `--timeout` runs out, it is reverted to the snapshot and brought back up, the snapshot is
   removed and the error (VIC's texts) reported; on success the previous upgrade's snapshot is removed and the new
   one kept, for `upgrade --rollback` / `rollback`, which reverts to it and removes it.
The flag is cleared at the end whatever happened; a run killed half-way leaves it set (`--reset-progress`).

What the VCH wrote into its appliance VM after the snapshot (network definitions: hidden `scopes|...` keys) is
carried over a revert, so a rollback loses no network.
"""
from __future__ import annotations

import dataclasses
import time

from .. import errors
from ..config import vch as vchconfig
from ..migration import RELEASES, migrate_vch
from ..trace import Operation
from ..vsphere import DatastorePath, Session, option_dict, option_values, vim
from . import deploy, flags, isos
from . import version as versions
from .commands import Connection, MachineError, _line, find_vch, open_session, report_volume_stores
from .output import Output

UPDATE_STATUS_KEY = "UpdateInProgress"
UPGRADE_PREFIX = "upgrade for"
CONFIGURE_PREFIX = "reconfigure for"
ROLLBACK_TIMEOUT = 180.0  # bringing the old appliance back is not bound by --timeout (VIC cleans up regardless)
NOT_FOUND = "A VCH version available from before the last upgrade could not be found."


def time_limit_text(what: str, timeout: float) -> str:
    return (f"{what} VCH exceeded time limit of {flags.format_duration(timeout)}. Please increase the timeout using "
            f"--timeout to accommodate for a busy vSphere target")


# -- the in-progress flag ------------------------------------------------------------------------------------------
def in_progress(op: Operation, session: Session, vch: deploy.VCH) -> bool:
    props = session.retrieve_one(op, vch.vm, ["config.extraConfig"])
    return option_dict(props.get("config.extraConfig")).get(UPDATE_STATUS_KEY, "").lower() == "true"


def set_in_progress(op: Operation, session: Session, vch: deploy.VCH, value: bool, *, exclusive: bool = False) -> bool:
    """Set the flag; with `exclusive`, only if it is not set, atomically (the VM's changeVersion): whether it was
    set by this call."""
    spec = vim.vm.ConfigSpec(extraConfig=option_values({UPDATE_STATUS_KEY: "true" if value else "false"}))
    if exclusive:
        props = session.retrieve_one(op, vch.vm, ["config.extraConfig", "config.changeVersion"])
        if option_dict(props.get("config.extraConfig")).get(UPDATE_STATUS_KEY, "").lower() == "true":
            return False
        spec.changeVersion = props.get("config.changeVersion") or None
    try:
        session.run_task(op, vch.vm.ReconfigVM_Task, spec=spec)
    except errors.ConcurrentModification:
        if exclusive:
            return False  # someone changed the VM between our read and write: the other run wins
        raise
    return True


# -- snapshots -----------------------------------------------------------------------------------------------------
def _snapshot_tree(op: Operation, session: Session, vch: deploy.VCH):
    """(current snapshot node, all nodes) of the appliance VM."""
    info = session.retrieve_one(op, vch.vm, ["snapshot"]).get("snapshot")
    if info is None or info.currentSnapshot is None:
        return None, []
    nodes, stack = [], list(info.rootSnapshotList or [])
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.childSnapshotList or [])
    current = next((n for n in nodes if n.snapshot._moId == info.currentSnapshot._moId), None)
    return current, nodes


def _ours(node) -> bool:
    return node is not None and node.name.startswith((UPGRADE_PREFIX, CONFIGURE_PREFIX))


def _remove_snapshot(op: Operation, out: Output, session: Session, node, vch: deploy.VCH) -> None:
    out.info(f"Deleting upgrade snapshot \"{node.name}\"")
    try:
        session.run_task(op, node.snapshot.RemoveSnapshot_Task, removeChildren=True, consolidate=True)
    except errors.NotFound:
        pass
    except errors.VicError as err:
        out.error(f"Failed to clean up appliance upgrade snapshot \"{node.name}\": {_line(err)}.")
        out.error(f"Snapshot \"{node.name}\" of appliance virtual machine \"{vch.name}\" MUST be removed manually "
                  f"before upgrade again")


def _revert(op: Operation, out: Output, session: Session, vch: deploy.VCH, node) -> None:
    """Revert the appliance to `node` (left powered off), keep what the VCH wrote since (network definitions),
    and power it on again if it was on when the snapshot was taken or when the revert began (VIC only looks at the
    snapshot; a VCH whose appliance had died when the snapshot was taken would stay down); a VCH slow to answer is
    only reported."""
    out.info(f"Reverting to snapshot {node.name}")
    props = session.retrieve_one(op, vch.vm, ["config.extraConfig", "runtime.powerState"])
    before = option_dict(props.get("config.extraConfig"))
    was_on = str(props.get("runtime.powerState")) == "poweredOn"
    try:
        session.run_task(op, node.snapshot.RevertToSnapshot_Task, suppressPowerOn=True)
    except errors.VicError as err:
        raise MachineError(f"Failed to roll back upgrade: {_line(err)}.") from err
    after = option_dict(session.retrieve_one(op, vch.vm, ["config.extraConfig"]).get("config.extraConfig"))
    carried = {key: value for key, value in before.items()
               if not key.startswith("guestinfo.") and key != UPDATE_STATUS_KEY and not vchconfig.owns_key(key)
               and after.get(key) != value}
    if carried:
        session.run_task(op, vch.vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(extraConfig=option_values(carried)))
    vch = deploy.refresh(op, session, vch)
    if str(node.state) != "poweredOn" and not was_on:
        out.info("Roll back finished - Appliance is kept in powered off status")
        return
    deploy.power_on(op, session, vch)
    try:
        deploy.wait_ready(op, session, vch, timeout=op.remaining() or ROLLBACK_TIMEOUT)
    except errors.VicError as err:
        out.debug(str(err))
        out.info("API may be slow to start - try to connect to API after a few minutes")


# -- the shared sequence -------------------------------------------------------------------------------------------
def _begin(op: Operation, out: Output, conn: Connection, name, vch_id, force: bool, title: str):
    out.info(f"### {title} ####")
    session = open_session(op, out, conn, force=force)
    try:
        vch = find_vch(op, session, name, vch_id)
    except BaseException:
        session.close(op)
        raise
    out.info("")
    out.info(f"VCH ID: {vch.vm._moId}")
    return session, vch


def _claim(op: Operation, session: Session, vch: deploy.VCH) -> None:
    if not set_in_progress(op, session, vch, True, exclusive=True):
        raise MachineError("Upgrade failed: another upgrade/configure operation is in progress",
                           hints=["If no other upgrade/configure process is running, use --reset-progress to reset "
                                  "the VCH upgrade/configure status"])


def _release(out: Output, session: Session, vch: deploy.VCH) -> None:
    op = Operation.new("reset UpdateInProgress", timeout=60)
    try:
        set_in_progress(op, session, vch, False)
    except errors.VicError as err:
        out.error(f"Failed to reset UpdateInProgress: {_line(err)}")


def reset_progress(op: Operation, out: Output, session: Session, vch: deploy.VCH) -> None:
    try:
        set_in_progress(op, session, vch, False)
    except errors.VicError as err:
        raise MachineError(f"Failed to reset UpdateInProgress flag: {_line(err)}") from err
    out.info("Reset UpdateInProgress flag successfully")



def _exclusively(op: Operation, out: Output, conn: Connection, name, vch_id, force: bool, reset: bool, title: str,
                 body) -> None:
    """What upgrade, rollback and configure share: find the VCH, then either `--reset-progress` or `body(session,
    vch)` while holding the UpdateInProgress flag (another such command is refused meanwhile)."""
    session, vch = _begin(op, out, conn, name, vch_id, force, title)
    try:
        if reset:
            reset_progress(op, out, session, vch)
            return
        _claim(op, session, vch)
        try:
            body(session, vch)
        finally:
            _release(out, session, vch)
        out.info("Completed successfully")
    finally:
        session.close(op)

def _reconfigure(op: Operation, out: Output, session: Session, vch: deploy.VCH, *, snapshot_name: str,
                 what: str, timeout: float, started: float, new_config: vchconfig.VCHConfig,
                 new_iso: DatastorePath | None) -> None:
    """Snapshot, then power off / reconfigure / power on / wait; on failure revert to the snapshot. The previous
    upgrade/configure snapshot is removed on success, this one on failure."""
    old, _ = _snapshot_tree(op, session, vch)
    out.step(f"Creating {what.lower()} snapshot")
    try:
        session.run_task(op, vch.vm.CreateSnapshot_Task, name=snapshot_name, description=f"{what.lower()} snapshot",
                         memory=False, quiesce=False)
    except errors.VicError as err:
        raise MachineError(f"Failed to create upgrade snapshot \"{snapshot_name}\": {_line(err)}.") from err
    ours, _ = _snapshot_tree(op, session, vch)
    # --timeout bounds the whole command, as VIC's context does; what is left of it bounds the new appliance
    deadline = Operation.new(f"{what} {vch.name}", timeout=max(0.001, timeout - (time.monotonic() - started)))
    try:
        _update(deadline, out, session, vch, new_config, new_iso, timeout)
    except (errors.VicError, MachineError) as err:
        out.end_step(ok=False)
        if isinstance(err, errors.Timeout) or deadline.expired:
            message = time_limit_text("Upgrading" if what == "Upgrade" else "Configuring", timeout)
        else:
            message = err.message if isinstance(err, MachineError) else _line(err)
        out.error(f"Failed to upgrade: {message}")
        out.info("Rolling back upgrade")
        back = Operation.new(f"roll back {vch.name}", timeout=ROLLBACK_TIMEOUT)
        try:
            _revert(back, out, session, vch, ours)
        except (errors.VicError, MachineError) as rerr:
            out.error(f"Failed to revert appliance to snapshot: {getattr(rerr, 'message', None) or _line(rerr)}")
            raise MachineError(message) from err
        out.info("Appliance is rolled back to old version")
        if new_iso is not None:
            _delete_file(back, out, session, new_iso)
        _remove_snapshot(back, out, session, ours, vch)
        raise MachineError(message) from err
    out.end_step()
    if _ours(old):
        _remove_snapshot(op, out, session, old, vch)


def _update(op: Operation, out: Output, session: Session, vch: deploy.VCH, config: vchconfig.VCHConfig,
            new_iso: DatastorePath | None, timeout: float) -> None:
    out.step("Powering off the appliance")
    deploy.power_off(op, session, vch)
    out.step("Setting VM configuration")
    fresh = deploy.refresh(op, session, vch)
    secret = vchconfig.secret_key_of(fresh.extra_config)
    config = dataclasses.replace(config, init=dataclasses.replace(config.init, sessions={}))
    changes = vchconfig.diff(fresh.extra_config, vchconfig.encode(config, secret))
    spec = vim.vm.ConfigSpec(extraConfig=option_values(changes) or None)
    if new_iso is not None:
        device = deploy.cdrom(op, session, vch.vm)
        if device is None:
            raise MachineError("the appliance VM has no CD-ROM to boot the new appliance ISO from")
        if getattr(device.backing, "fileName", "") != str(new_iso):
            out.info(f"Switching appliance iso to {new_iso}")
            device.backing = vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=str(new_iso))
            spec.deviceChange = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=device)]
    session.run_task(op, vch.vm.ReconfigVM_Task, spec=spec)
    vch = deploy.refresh(op, session, vch)
    out.step("Powering on the appliance")
    deploy.power_on(op, session, vch)
    out.step("Waiting for major appliance components to launch")
    deploy.wait_ready(op, session, vch, timeout=max(0.01, op.remaining() or timeout))
    report_volume_stores(out, config)



def _delete_file(op: Operation, out: Output, session: Session, path: DatastorePath) -> None:
    try:
        session.run_task(op, session.content.fileManager.DeleteDatastoreFile_Task, str(path), session.datacenter)
    except errors.NotFound:
        pass
    except errors.VicError as err:
        out.warn(f"Image file \"{path}\" is not removed for {_line(err)}. Use the vSphere UI to delete content")


# -- upgrade -------------------------------------------------------------------------------------------------------
def upgrade(op: Operation, out: Output, conn: Connection, *, name: str | None, vch_id: str | None,
            force: bool = False, timeout: float = 180.0, reset: bool = False, rollback: bool = False) -> None:
    started = time.monotonic()
    if rollback:
        return roll_back(op, out, conn, name=name, vch_id=vch_id, force=force, timeout=timeout, reset=reset)

    def body(session: Session, vch: deploy.VCH) -> None:
        installer = versions.installer_build()
        build = vch.config.init.version
        if not force and versions.compare(build, installer) >= 0:
            raise MachineError(f"\"{vch.name}\" has same or newer version {versions.short_version(build)} than "
                               f"installer version {versions.short_version(installer)}. No upgrade is available.")
        config = migrated_config(vch)
        config.init = dataclasses.replace(config.init, version=installer)
        out.step("Uploading images for container")
        home = vch.home
        appliance_iso = home.join(f"appliance-{installer.version}.iso")
        bootstrap_iso = home.join(f"bootstrap-{installer.version}.iso")
        session.upload(op, appliance_iso, isos.appliance_iso(installer.version))
        session.upload(op, bootstrap_iso, isos.bootstrap_iso(installer.version))
        config.container = dataclasses.replace(config.container, bootstrap_image_path=str(bootstrap_iso))
        out.end_step()
        _reconfigure(op, out, session, vch, snapshot_name=f"{UPGRADE_PREFIX} {installer.version}",
                     what="Upgrade", timeout=timeout, started=started, new_config=config, new_iso=appliance_iso)
        out.info(f"VCH {vch.name} upgraded from {versions.short_version(build)} to "
                 f"{versions.short_version(installer)}")

    _exclusively(op, out, conn, name, vch_id, force, reset, "Upgrading VCH", body)

def migrated_config(vch: deploy.VCH) -> vchconfig.VCHConfig:
    """The VCH's config migrated to the current data version (VIC FetchAndMigrateVCHConfig)."""
    data, migrated = migrate_vch(vch.extra_config)
    return vchconfig.decode(data) if migrated else dataclasses.replace(vch.config)


# -- rollback ------------------------------------------------------------------------------------------------------
def roll_back(op: Operation, out: Output, conn: Connection, *, name: str | None, vch_id: str | None,
              force: bool = False, timeout: float = 180.0, reset: bool = False) -> None:
    def body(session: Session, vch: deploy.VCH) -> None:
        node, _ = _snapshot_tree(op, session, vch)
        if node is None:
            raise MachineError(f"{NOT_FOUND} No error was reported, so it's possible that this VCH has never "
                               f"been upgraded or the saved previous version was removed out-of-band.")
        back = Operation.new(f"roll back {vch.name}", timeout=max(timeout, 1.0))
        out.step("Rolling back the appliance")
        try:
            _revert(back, out, session, vch, node)
        except MachineError as err:
            raise MachineError(f"could not complete manual rollback: {err.message}") from err
        out.end_step()
        _remove_snapshot(back, out, session, node, vch)
        now = deploy.refresh(op, session, vch).config.init.version
        out.info(f"VCH {vch.name} rolled back to {versions.short_version(now)}")

    _exclusively(op, out, conn, name, vch_id, force, reset, "Rolling back VCH", body)


# -- configure -----------------------------------------------------------------------------------------------------
def configure(op: Operation, out: Output, conn: Connection, *, name: str | None, vch_id: str | None,
              volume_stores: dict[str, str], force: bool = False, timeout: float = 180.0,
              reset: bool = False) -> None:
    started = time.monotonic()

    def body(session: Session, vch: deploy.VCH) -> None:
        installer = versions.installer_build()
        build = vch.config.init.version
        if versions.compare(build, installer) != 0 and not force:
            raise MachineError(f"VCH version {versions.short_version(build)} is different than installer "
                               f"version {versions.short_version(installer)}: upgrade the VCH before "
                               f"configuring it, or specify --force")
        config = dataclasses.replace(vch.config)
        stores = dict(config.storage.volume_stores)
        for label, store in volume_stores.items():
            if label in stores and stores[label] != store:
                raise MachineError(f"volume store {label} already exists at {stores[label]}: volume stores "
                                   f"can only be added")
            stores[label] = store
        if stores == config.storage.volume_stores:
            out.info("Nothing to configure")
            return
        for label, store in volume_stores.items():
            if vchconfig.is_nfs_store(store):
                continue  # reached by the port layer when the VCH restarts
            ds = DatastorePath.parse(store).datastore
            try:
                session.finder.datastore(op, ds, session.datacenter)
            except (errors.NotFound, errors.InvalidArgument) as err:
                raise MachineError(f"Failure finding datastore for volume store {label}: {_line(err)}") from err
        config.storage = dataclasses.replace(config.storage, volume_stores=stores)
        version = build.version if build is not None else installer.version
        _reconfigure(op, out, session, vch, snapshot_name=f"{CONFIGURE_PREFIX} {version}", what="Configure",
                     timeout=timeout, started=started, new_config=config, new_iso=None)

    _exclusively(op, out, conn, name, vch_id, force, reset, "Configuring VCH", body)


__all__ = ["upgrade", "roll_back", "configure", "in_progress", "set_in_progress", "migrated_config",
           "UPDATE_STATUS_KEY", "UPGRADE_PREFIX", "CONFIGURE_PREFIX", "RELEASES", "time_limit_text"]
