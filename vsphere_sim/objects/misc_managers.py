"""OptionManager (the `VpxSettings` of ServiceContent.setting): vCenter's advanced settings, queried and updated."""
from __future__ import annotations

from pyVmomi import vim

from .base import ManagedObjectImpl

DEFAULT_SETTINGS = {
    "VirtualCenter.InstanceName": "vsphere-sim",
    "VirtualCenter.FQDN": "vsphere-sim.local",
    "VirtualCenter.AutoManagedIPV4": "127.0.0.1",
    "config.vpxd.sso.default.admin": "administrator@vsphere.local",
    "event.maxAge": "30",
    "task.maxAge": "30",
}


class OptionManagerImpl(ManagedObjectImpl):
    vim_type = vim.option.OptionManager
    persistent = True

    def __init__(self, sim, moid):
        super().__init__(sim, moid)
        self.init_props(setting=[vim.option.OptionValue(key=k, value=v) for k, v in DEFAULT_SETTINGS.items()],
                        supportedOption=[])

    def QueryOptions(self, ctx, name=None):
        settings = list(self.props["setting"])
        if not name:
            return settings
        if name.endswith("."):
            found = [s for s in settings if s.key.startswith(name)]
        else:
            found = [s for s in settings if s.key == name]
        if not found:
            raise vim.fault.InvalidName(msg=f"A specified parameter was not correct: {name}", name=name)
        return found

    def UpdateOptions(self, ctx, changedValue):
        settings = {s.key: s for s in self.props["setting"]}
        for option in changedValue:
            if option.value is None or option.value == "":
                settings.pop(option.key, None)
            else:
                settings[option.key] = vim.option.OptionValue(key=option.key, value=option.value)
        self.set(setting=list(settings.values()))
