"""An executor config written to a VM's extraConfig and read back: vic_ref.config and vic_ref.vsphere together."""
from __future__ import annotations

from vic_ref import config
from vic_ref.config import Cmd, Common, ExecutorConfig, ExecutorConfigCommon, SessionConfig
from vic_ref.vsphere import Target, option_dict, option_values, vim

from .conftest import create_vm

CID = "0123456789abcdef" * 4


def _read(session, op, vm) -> dict:
    return option_dict(session.retrieve_one(op, vm, ["config.extraConfig"]).get("config.extraConfig"))


def test_write_change_and_delete_through_reconfigure(session, op):
    cfg = ExecutorConfig(common=ExecutorConfigCommon(id=CID, name="web"), version=config.Build(plugin_version=10),
                         sessions={CID: SessionConfig(common=Common(id=CID), cmd=Cmd(path="/bin/sh",
                                                                                    args=["sh", "-c", "a|b"]))},
                         execs={"e1": SessionConfig(common=Common(id="e1"))})
    vm = create_vm(session, op, extra={"disk.EnableUUID": "true"})
    session.run_task(op, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(extraConfig=option_values(config.encode(cfg))))
    stored = _read(session, op, vm)
    assert config.decode(stored) == cfg
    assert stored["common/name"] == "web" and stored["guestinfo.vice./common/ExecutionEnvironment"] == "<nil>"

    renamed = ExecutorConfig(**{**cfg.__dict__, "common": ExecutorConfigCommon(id=CID, name="db"), "execs": {}})
    changes = config.diff(stored, config.encode(renamed))
    assert ("common/name", "db") in changes and ("guestinfo.vice./execs@non-persistent", "") in changes
    session.run_task(op, vm.ReconfigVM_Task, spec=vim.vm.ConfigSpec(extraConfig=option_values(changes)))
    after = _read(session, op, vm)
    assert config.decode(after) == renamed
    assert not any("execs" in key for key in after)
    assert after["disk.EnableUUID"] == "true"  # not ours: never deleted


def test_option_helpers():
    values = option_values([("a", "1"), ("b", "")])
    assert [(o.key, o.value) for o in values] == [("a", "1"), ("b", "")]
    assert option_dict(option_values({"k": "v"})) == {"k": "v"} and option_dict(None) == {}


def test_target_from_env():
    assert Target.from_env({}) is None
    target = Target.from_env({"VSPHERE_URL": "vc.example", "VSPHERE_USER": "u", "VSPHERE_PASSWORD": "p",
                              "VSPHERE_INSECURE": "1"}, datacenter="dc")
    assert (target.user, target.password, target.insecure, target.datacenter) == ("u", "p", True, "dc")
    assert target.parts() == ("https", "vc.example", 443, "/sdk")
