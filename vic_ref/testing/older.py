"""Containers as an older VCH left them, made from new ones with pyVmomi (for the rename and upgrade suites).

An older VCH (data version below RENAME_SUPPORTED = 4, vic-behaviour.md §3) wrote a container's name into the
guest-visible key `guestinfo.vice./common/name`, had no hidden `common/name`, and recorded its data version in
`guestinfo.vice./version/PluginVersion` (or nothing at all: version 0). `make_older(vm)` rewrites a powered-off
container VM's extraConfig that way, through ReconfigVM_Task as any vSphere client would, so a running VCH (whose
watcher sees the change) and a restarted one both treat it as an old container: the tether puts the name in
/etc/hosts, a rename rewrites the guest-visible key.

    from vic_ref.testing.older import make_older
    (vm,) = find_vms(si, f"web-{cid[:12]}")   # a pyVmomi vim.VirtualMachine, powered off
    make_older(vm)                            # data version 3; make_older(vm, data_version=None) drops the key

The container's other keys are left as they are: the executor config's shape is the same in those versions (only
`createtime` was in seconds before data version 9, which nothing here depends on).
"""
from __future__ import annotations

HIDDEN_NAME_KEY = "common/name"
LEGACY_NAME_KEY = "guestinfo.vice./common/name"
VERSION_KEY = "guestinfo.vice./version/PluginVersion"
OLDER_DATA_VERSION = 3  # TasksSupported: the last data version before RenameSupported


def extra_config(vm) -> dict[str, str]:
    return {o.key: str(o.value) for o in vm.config.extraConfig or []}


def make_older(vm, data_version: int | None = OLDER_DATA_VERSION) -> str:
    """Rewrite a powered-off container VM's name keys and data version as an older VCH wrote them; its name."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    if vm.runtime.powerState != "poweredOff":
        raise ValueError(f"{vm.name} must be powered off to be rewritten as an older container")
    extra = extra_config(vm)
    name = extra.get(HIDDEN_NAME_KEY) or extra.get(LEGACY_NAME_KEY) or ""
    if not name:
        raise ValueError(f"{vm.name} has no container name")
    changes = [vim.option.OptionValue(key=LEGACY_NAME_KEY, value=name),
               vim.option.OptionValue(key=HIDDEN_NAME_KEY, value="")]  # an empty value removes the key
    if data_version is None:
        changes.append(vim.option.OptionValue(key=VERSION_KEY, value=""))
    else:
        changes.append(vim.option.OptionValue(key=VERSION_KEY, value=str(data_version)))
    WaitForTask(vm.ReconfigVM_Task(vim.vm.ConfigSpec(extraConfig=changes)))
    return name


def is_older(vm) -> bool:
    """Whether the VM still looks as an older VCH wrote it (no hidden name key, data version below 4)."""
    extra = extra_config(vm)
    version = extra.get(VERSION_KEY, "")
    return HIDDEN_NAME_KEY not in extra and (not version or version == "<nil>" or int(version) < 4)


__all__ = ["make_older", "is_older", "extra_config", "HIDDEN_NAME_KEY", "LEGACY_NAME_KEY", "VERSION_KEY",
           "OLDER_DATA_VERSION"]
