"""Where network definitions persist: hidden extraConfig keys of the VCH's appliance VM (`scopes|<name>/subnet`, ...).

Why there: the VCH keeps no state of its own, a network with no container on it must survive a VCH restart (so a
container's endpoint can't be the only record), and the appliance VM lives exactly as long as the VCH. Hidden keys are
invisible to the appliance's guest (it reads its config through guestinfo) and are not keys a `VCHConfig` owns, so
`vic-machine`'s reconfigure leaves them alone. Written with ReconfigVM_Task and the VM's changeVersion, retried from a
fresh read on a conflict (the appliance's own guestinfo reports change the VM too).

Without an appliance VM (in-process tests of the port layer) definitions live in memory only.
"""
from __future__ import annotations

from ...config import extraconfig
from ...config.extraconfig import struct, vic
from ...trace import Operation
from ...vsphere import option_dict, option_values, retry_on_conflict, vim
from .scope import ScopeDefinition


@struct
class NetworkStore:
    scopes: dict[str, ScopeDefinition] = vic("scopes", "hidden")


def _owned(key: str) -> bool:
    # only our own keys: extraconfig.owned_by would claim every `guestinfo.vice.` key (the VCH's config) as well
    return key == "scopes" or key.startswith(("scopes|", "scopes/"))


def encode(definitions: dict[str, ScopeDefinition]) -> dict[str, str]:
    return extraconfig.encode(NetworkStore(scopes=dict(definitions)))


def decode(extra: dict[str, str]) -> dict[str, ScopeDefinition]:
    return dict(extraconfig.decode(NetworkStore, extra).scopes)


class ApplianceStore:
    """Network definitions on the appliance VM named `vm_name` in `folder` (None: in memory only)."""

    def __init__(self, session, folder, vm_name: str):
        self.session = session
        self.folder = folder
        self.vm_name = vm_name
        self.vm = None
        self._memory: dict[str, ScopeDefinition] = {}

    def _find(self, op: Operation):
        if self.vm is None and self.folder is not None:
            refs = self.session.retrieve_one(op, self.folder, ["childEntity"]).get("childEntity") or []
            vms = [r for r in refs if isinstance(r, vim.VirtualMachine)]
            for item in self.session.retrieve(op, vms, ["name"], ignore_missing=True):
                if item.get("name") == self.vm_name:
                    self.vm = item.obj
                    break
            if self.vm is None:
                op.warning("no appliance VM %r: network definitions are kept in memory only", self.vm_name)
                self.folder = None
        return self.vm

    @property
    def persistent(self) -> bool:
        return self.vm is not None

    def load(self, op: Operation) -> dict[str, ScopeDefinition]:
        vm = self._find(op)
        if vm is None:
            return dict(self._memory)
        props = self.session.retrieve_one(op, vm, ["config.extraConfig"])
        return decode(option_dict(props.get("config.extraConfig")))

    def save(self, op: Operation, name: str, definition: ScopeDefinition | None) -> None:
        """Add or replace (`definition`) or delete (None) one network's definition."""
        vm = self._find(op)
        if vm is None:
            if definition is None:
                self._memory.pop(name, None)
            else:
                self._memory[name] = definition
            return

        def attempt(op: Operation) -> None:
            props = self.session.retrieve_one(op, vm, ["config.extraConfig", "config.changeVersion"])
            old = option_dict(props.get("config.extraConfig"))
            current = decode(old)
            if definition is None:
                current.pop(name, None)
            else:
                current[name] = definition
            changes = extraconfig.diff(old, encode(current), owned=_owned)
            if not changes:
                return
            spec = vim.vm.ConfigSpec(changeVersion=props.get("config.changeVersion") or None,
                                     extraConfig=option_values(changes))
            self.session.run_task(op, vm.ReconfigVM_Task, spec=spec)
        retry_on_conflict(op, attempt)


__all__ = ["ApplianceStore", "NetworkStore", "encode", "decode"]
