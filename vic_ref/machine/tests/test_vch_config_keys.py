"""The VCH's configuration lives in its appliance VM's extraConfig beside keys other parts of vic-ref write there
(hidden keys such as the network store's): a diff made by another owner must never delete the VCH's keys, and
vic-machine's own rewrite must never delete theirs."""
from __future__ import annotations

from vic_ref.config import extraconfig
from vic_ref.config import vch as vchconfig
from vic_ref.config.extraconfig import struct, vic


@struct
class HiddenOnly:
    """A config of hidden keys only, like the network store's `scopes|<name>/...`."""
    scopes: dict[str, str] = vic("scopes", "hidden")


def test_hidden_only_owner_and_the_vch_config_leave_each_other_alone():
    config = vchconfig.new_config("vch1", "http://127.0.0.1:1/sdk", "u", "p", image_store="[ds]", port=2375)
    vch_keys = vchconfig.encode(config)
    other = extraconfig.encode(HiddenOnly(scopes={"bridge": "x"}))
    vm = {**vch_keys, **other}
    # the other owner rewrites its part: none of the VCH's keys may go
    changes = extraconfig.diff(vm, extraconfig.encode(HiddenOnly(scopes={"b2": "y"})),
                               owned=extraconfig.owned_by(HiddenOnly))
    deleted = {c.key for c in changes if c.value == ""}
    assert deleted and not deleted & set(vch_keys)
    after = extraconfig.apply(vm, changes)
    assert vchconfig.decode(after) == vchconfig.decode(vch_keys)
    # vic-machine (or vic-ref up) rewrites the VCH's part: the other owner's keys stay
    changes = vchconfig.diff(after, vchconfig.encode(config))
    assert not {c.key for c in changes if c.value == ""} & {k for k in after if k.startswith("scopes")}
