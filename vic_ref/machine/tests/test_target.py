"""vic-machine against the embedded sim, without deploying a VCH: trusting an https target (VIC's thumbprint rule),
finding inventory for create (with suggestions), and the errors for a VCH that isn't there."""
from __future__ import annotations

import re

import pytest

from vic_ref.machine import cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def https_sim(tmp_path_factory):
    from vsphere_sim import Simulator
    sim = Simulator(tmp_path_factory.mktemp("sim-https"))
    server = sim.serve("127.0.0.1:0", tls=True)
    yield server.url, sim.user, sim.password
    sim.close()


def run(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_untrusted_https_target_needs_a_thumbprint(https_sim, capsys):
    url, user, password = https_sim
    code, out, err = run(capsys, "ls", "--target", url, "--user", user, "--password", password)
    assert code == 1
    match = re.search(r"Failed to verify certificate for target=127\.0\.0\.1:\d+ \(thumbprint=((?:[0-9A-F]{2}:){19}"
                      r"[0-9A-F]{2})\)", err)
    assert match, err
    assert "--thumbprint=" + match.group(1) in out  # the hint says how to go on
    code, out, err = run(capsys, "ls", "--target", url, "--user", user, "--password", password,
                         "--thumbprint", match.group(1))
    assert code == 0, err
    assert re.search(r"^ID\s+PATH\s+NAME\s+VERSION\s+UPGRADE STATUS$", out, re.M)
    code, out, err = run(capsys, "ls", "--target", url, "--user", user, "--password", password, "--force")
    assert code == 0, err
    assert f"thumbprint {match.group(1)} due to --force" in out
    code, out, err = run(capsys, "ls", "--target", url, "--user", user, "--password", password,
                         "--thumbprint", "00:" * 19 + "00")
    assert code == 1 and "does not match the pinned thumbprint" in err


def test_wrong_password(sim_target, capsys):
    code, out, err = run(capsys, "ls", "--target", sim_target.url, "--user", sim_target.user, "--password", "nope")
    assert code == 1
    assert f"Failed to log in to {sim_target.url} as '{sim_target.user}'" in err


def test_create_needs_an_unambiguous_compute_resource_and_datastore(sim_target, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["create", "--target", sim_target.url, "--user", sim_target.user, "--password", sim_target.password,
            "--name", "never"]
    code, out, err = run(capsys, *base, "--image-store", "LocalDS_0")
    assert code == 1
    assert "Failure finding compute resource" in err
    assert re.search(r"Suggested values for --compute-resource: .*DC0_C0.*DC0_H0", out)
    code, out, err = run(capsys, *base, "--compute-resource", "DC0_C0")
    assert code == 1 and "Failure finding datastore" in err
    assert re.search(r"Suggested values for --image-store: LocalDS_0, vsanDatastore", out)
    code, out, err = run(capsys, *base, "--compute-resource", "DC0_C0", "--image-store", "LocalDS_0",
                         "--volume-store", "NoSuchDS/v:default")
    assert code == 1 and "Failure finding datastore for volume store default" in err
    assert not (tmp_path / "never").exists()  # nothing generated for a create that can't happen


@pytest.mark.parametrize("command", ["inspect", "delete"])
def test_a_vch_that_is_not_there(sim_target, capsys, command):
    code, out, err = run(capsys, command, "--target", sim_target.url, "--user", sim_target.user, "--password",
                         sim_target.password, "--name", "nope")
    assert code == 1
    assert f"vic-machine {command} failed: Failed to get Virtual Container Host nope" in err
    code, out, err = run(capsys, command, "--target", sim_target.url, "--user", sim_target.user, "--password",
                         sim_target.password, "--id", "vm-999999")
    assert code == 1 and "Failed to get Virtual Container Host vm-999999" in err
