"""A VM's configuration: ConfigSpec → ConfigInfo on create, the plain fields of a reconfigure, extraConfig, and the
summary/identity values vCenter derives (UUIDs, changeVersion, guest names)."""
from __future__ import annotations

import datetime
import re
import uuid as uuid_mod

from pyVmomi import VmomiSupport, vim, vmodl

from .data import make, shallow_copy

DEFAULT_HW_VERSION = "vmx-21"
DEFAULT_GUEST = "otherGuest"
GUEST_IDS = {g.lower(): g for g in VmomiSupport.GetVmodlType("vim.vm.GuestOsDescriptor.GuestOsIdentifier").values}
GUEST_NAMES = {
    "otherGuest": "Other (32-bit)", "otherGuest64": "Other (64-bit)",
    "otherLinuxGuest": "Other Linux (32-bit)", "otherLinux64Guest": "Other Linux (64-bit)",
    "other3xLinux64Guest": "Other 3.x Linux (64-bit)", "other4xLinux64Guest": "Other 4.x Linux (64-bit)",
    "other5xLinux64Guest": "Other 5.x or later Linux (64-bit)", "vmwarePhoton64Guest": "VMware Photon OS (64-bit)",
    "ubuntu64Guest": "Ubuntu Linux (64-bit)", "debian10_64Guest": "Debian GNU/Linux 10 (64-bit)",
    "debian11_64Guest": "Debian GNU/Linux 11 (64-bit)", "debian12_64Guest": "Debian GNU/Linux 12 (64-bit)",
    "centos7_64Guest": "CentOS 7 (64-bit)", "rhel8_64Guest": "Red Hat Enterprise Linux 8 (64-bit)",
    "rhel9_64Guest": "Red Hat Enterprise Linux 9 (64-bit)", "windows9Server64Guest": "Microsoft Windows Server 2016",
}

# ConfigSpec fields copied as they are onto ConfigInfo when set
PLAIN_FIELDS = ("annotation", "alternateGuestName", "firmware", "locationId", "npivWorldWideNameType",
                "swapPlacement", "cpuHotAddEnabled", "cpuHotRemoveEnabled", "memoryHotAddEnabled", "nestedHVEnabled",
                "changeTrackingEnabled", "guestAutoLockEnabled", "messageBusTunnelEnabled", "npivTemporaryDisabled",
                "npivOnNonRdmDisks", "vPMCEnabled", "vvtdEnabled", "vbsEnabled", "memoryReservationLockedToMax",
                "managedBy", "latencySensitivity", "cpuAffinity", "memoryAffinity", "consolePreferences",
                "sevEnabled", "migrateEncryption", "ftEncryptionMode")
# ConfigSpec fields whose set members are merged into the VM's (tools, flags, boot options, allocations)
MERGED_FIELDS = (("tools", "tools"), ("flags", "flags"), ("bootOptions", "bootOptions"),
                 ("cpuAllocation", "cpuAllocation"), ("memoryAllocation", "memoryAllocation"),
                 ("powerOpInfo", "defaultPowerOps"))


def guest_id(value: str | None) -> str:
    if not value:
        return DEFAULT_GUEST
    known = GUEST_IDS.get(value.lower())
    if known is None:
        raise vmodl.fault.InvalidArgument(msg=f"A specified parameter was not correct: configSpec.guestId "
                                              f"('{value}' is not a known guest OS)",
                                          invalidProperty="configSpec.guestId")
    return known


def guest_full_name(gid: str) -> str:
    if gid in GUEST_NAMES:
        return GUEST_NAMES[gid]
    bits = "64-bit" if "64" in gid else "32-bit"
    return f"{gid.removesuffix('Guest').removesuffix('_64').removesuffix('64')} ({bits})"


def new_bios_uuid() -> str:
    """vCenter-generated BIOS UUIDs start with 42."""
    return "42" + str(uuid_mod.uuid4())[2:]


def new_instance_uuid() -> str:
    """vCenter-generated instance UUIDs start with 50."""
    return "50" + str(uuid_mod.uuid4())[2:]


def valid_uuid(value: str, prop: str) -> str:
    try:
        return str(uuid_mod.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise vmodl.fault.InvalidArgument(msg=f"A specified parameter was not correct: {prop}",
                                          invalidProperty=prop) from None


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


_CHANGE_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _parse_change_version(text: str) -> datetime.datetime:
    # the shape this module writes, read by fromisoformat (strptime costs ~50x more); anything else, or what
    # fromisoformat refuses (strptime takes a leap second), as before
    if _CHANGE_VERSION.fullmatch(text):
        try:
            return datetime.datetime.fromisoformat(text[:26]).replace(tzinfo=datetime.UTC)
        except ValueError:
            pass
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)


def next_change_version(old: str | None) -> tuple[str, datetime.datetime]:
    """vCenter's changeVersion is the time of the change (microseconds); it only ever grows."""
    stamp = utcnow()
    if old:
        try:
            prev = _parse_change_version(old)
            if stamp <= prev:
                stamp = prev + datetime.timedelta(microseconds=1)
        except ValueError:
            pass
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), stamp


def default_allocation(shares: int) -> vim.ResourceAllocationInfo:
    return make(vim.ResourceAllocationInfo, reservation=0, expandableReservation=False, limit=-1,
                shares=make(vim.SharesInfo, level="normal", shares=shares))


def new_config(spec, name: str, vm_path: str, bios_uuid: str, instance_uuid: str) -> vim.vm.ConfigInfo:
    """The ConfigInfo of a VM being created (devices and extraConfig are filled by the caller)."""
    gid = guest_id(spec.guestId)
    vm_dir = vm_path.rpartition("/")[0] + "/" if "/" in vm_path else vm_path.rpartition("]")[0] + "]"
    version, stamp = next_change_version(None)
    num_cpu = spec.numCPUs or 1
    memory = spec.memoryMB or 32
    config = make(vim.vm.ConfigInfo,
        changeVersion=version, modified=stamp, createDate=stamp, name=name, guestFullName=guest_full_name(gid),
        version=spec.version or DEFAULT_HW_VERSION, uuid=bios_uuid, instanceUuid=instance_uuid,
        npivTemporaryDisabled=True, locationId=None, template=False, guestId=gid, alternateGuestName="",
        annotation="", firmware="bios",
        files=make(vim.vm.FileInfo, vmPathName=vm_path, snapshotDirectory=vm_dir, suspendDirectory=vm_dir,
                   logDirectory=vm_dir),
        tools=make(vim.vm.ToolsConfigInfo, toolsVersion=0, afterPowerOn=True, afterResume=True, beforeGuestStandby=True,
                   beforeGuestShutdown=True, beforeGuestReboot=None, toolsUpgradePolicy="manual",
                   syncTimeWithHostAllowed=True, syncTimeWithHost=False),
        flags=make(vim.vm.FlagInfo, disableAcceleration=False, enableLogging=True, useToe=False, runWithDebugInfo=False,
                   monitorType="release", htSharing="any", snapshotDisabled=False, snapshotLocked=False,
                   diskUuidEnabled=False, virtualMmuUsage="automatic", virtualExecUsage="hvAuto",
                   snapshotPowerOffBehavior="powerOff", recordReplayEnabled=False,
                   faultToleranceType="unset",
                   cbrcCacheEnabled=False, vvtdEnabled=False, vbsEnabled=False),
        defaultPowerOps=make(vim.vm.DefaultPowerOpInfo, powerOffType="soft", suspendType="hard", resetType="soft",
                             defaultPowerOffType="soft", defaultSuspendType="hard",
                             defaultResetType="soft", standbyAction="checkpoint"),
        rebootPowerOff=False,
        hardware=make(vim.vm.VirtualHardware, numCPU=num_cpu, numCoresPerSocket=spec.numCoresPerSocket or 1,
                      autoCoresPerSocket=spec.numCoresPerSocket is None, memoryMB=memory,
                      virtualICH7MPresent=False, virtualSMCPresent=False, device=[]),
        cpuAllocation=default_allocation(1000 * num_cpu), memoryAllocation=default_allocation(10 * memory),
        latencySensitivity=make(vim.LatencySensitivity, level="normal"),
        memoryHotAddEnabled=False, cpuHotAddEnabled=False, cpuHotRemoveEnabled=False, hotPlugMemoryLimit=memory,
        hotPlugMemoryIncrementSize=0, extraConfig=[], datastoreUrl=[], swapPlacement="inherit",
        bootOptions=make(vim.vm.BootOptions, bootDelay=0, enterBIOSSetup=False, efiSecureBootEnabled=False,
                         bootRetryEnabled=False, bootRetryDelay=10000, networkBootProtocol="ipv4"),
        vAssertsEnabled=False, changeTrackingEnabled=False, maxMksConnections=40, guestAutoLockEnabled=False,
        messageBusTunnelEnabled=False, nestedHVEnabled=False, vPMCEnabled=False, keyId=None,
        guestIntegrityInfo=None, migrateEncryption="opportunistic", sgxInfo=None,
        ftEncryptionMode="ftEncryptionOpportunistic",
        guestMonitoringModeInfo=None, sevEnabled=False, numaInfo=None, pmemFailoverEnabled=False,
        vmxStatsCollectionEnabled=True, vmOpNotificationToAppEnabled=False, vmOpNotificationTimeout=-1,
        deviceSwap=None, pmem=None, deviceGroups=None, fixedPassthruHotPlugEnabled=False, metroFtEnabled=False,
        metroFtHostGroup=None)
    return config


def copy_config(config):
    """A copy to change and then commit whole: the parts a reconfigure changes in place are copied (hardware and
    the merged settings); devices are copied by the device planner, extraConfig is rebuilt as a new list."""
    new = shallow_copy(config)
    new.hardware = shallow_copy(config.hardware)
    for _, name in MERGED_FIELDS:
        value = getattr(config, name, None)
        if value is not None:
            setattr(new, name, shallow_copy(value))
    return new


def check_reconfigure(config, spec, powered_on: bool) -> None:
    """Faults for changes a running VM can't take (vSphere: hot-add must be enabled; no hot shrink)."""
    if not powered_on:
        return
    hw = config.hardware
    if spec.numCPUs and spec.numCPUs != hw.numCPU:
        if spec.numCPUs > hw.numCPU and not config.cpuHotAddEnabled or \
                spec.numCPUs < hw.numCPU and not config.cpuHotRemoveEnabled:
            raise vim.fault.InvalidPowerState(
                msg="The attempted operation cannot be performed in the current state (Powered on).",
                requestedState="poweredOff", existingState="poweredOn")
    if spec.memoryMB and spec.memoryMB != hw.memoryMB:
        if spec.memoryMB < hw.memoryMB or not config.memoryHotAddEnabled:
            raise vim.fault.InvalidPowerState(
                msg="The attempted operation cannot be performed in the current state (Powered on).",
                requestedState="poweredOff", existingState="poweredOn")
    for name in ("guestId", "firmware", "version", "cpuHotAddEnabled", "memoryHotAddEnabled", "numCoresPerSocket"):
        value = getattr(spec, name, None)
        current = getattr(config, name, None) if name != "numCoresPerSocket" else hw.numCoresPerSocket
        if value is not None and value != current:
            raise vim.fault.InvalidPowerState(
                msg="The attempted operation cannot be performed in the current state (Powered on).",
                requestedState="poweredOff", existingState="poweredOn")


def _merge(target, source):
    """Copy the set fields of `source` onto `target` (a data object of the same family)."""
    if target is None:
        return source
    for prop in source._GetPropertyList():
        value = getattr(source, prop.name, None)
        if value is None or prop.name in ("dynamicType", "dynamicProperty"):
            continue
        if isinstance(value, list) and not value:
            continue
        try:
            setattr(target, prop.name, value)
        except (AttributeError, TypeError):
            pass
    return target


def apply_fields(config, spec) -> None:
    """Apply the plain (non-device, non-name, non-extraConfig) fields of a ConfigSpec."""
    for name in PLAIN_FIELDS:
        value = getattr(spec, name, None)
        if value is not None:
            setattr(config, name, value)
    for spec_name, config_name in MERGED_FIELDS:
        value = getattr(spec, spec_name, None)
        if value is not None:
            setattr(config, config_name, _merge(getattr(config, config_name, None), value))
    if spec.guestId:
        config.guestId = guest_id(spec.guestId)
        config.guestFullName = guest_full_name(config.guestId)
    if spec.uuid:
        config.uuid = valid_uuid(spec.uuid, "configSpec.uuid")
    if spec.version:
        config.version = spec.version
    hw = config.hardware
    if spec.numCPUs:
        hw.numCPU = spec.numCPUs
    if spec.numCoresPerSocket:
        hw.numCoresPerSocket = spec.numCoresPerSocket
        hw.autoCoresPerSocket = False
    if spec.memoryMB:
        hw.memoryMB = spec.memoryMB
    if spec.virtualICH7MPresent is not None:
        hw.virtualICH7MPresent = spec.virtualICH7MPresent
    if spec.virtualSMCPresent is not None:
        hw.virtualSMCPresent = spec.virtualSMCPresent


def option_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


def apply_extra_config(config, options) -> bool:
    """Set or (with an empty value) remove extraConfig keys; returns whether anything changed.

    Keys match case-insensitively (the .vmx is case-insensitive); a key keeps the spelling it was first set with."""
    current = list(config.extraConfig or [])
    index = {o.key.lower(): i for i, o in enumerate(current)}
    changed = False
    removed: set[int] = set()
    for option in options or []:
        if not option.key:
            continue
        text = option_text(option.value)
        i = index.get(option.key.lower())
        if text == "":
            if i is not None and i not in removed:
                removed.add(i)
                changed = True
            continue
        if i is not None and i not in removed:
            if current[i].value != text:
                current[i] = vim.option.OptionValue(key=current[i].key, value=text)
                changed = True
        else:
            index[option.key.lower()] = len(current)
            current.append(vim.option.OptionValue(key=option.key, value=text))
            changed = True
    if changed:
        config.extraConfig = [o for i, o in enumerate(current) if i not in removed]
    return changed
