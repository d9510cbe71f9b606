"""`vic-machine` end to end: the real console script (.venv/bin/vic-machine) against a `vsphere-sim` subprocess of
this module, checked with pyVmomi (the appliance VM, its ISOs in its datastore folder, its guestinfo) and with the
real docker CLI (TLS with generated client certificates, `--tls-ca`, `--no-tls`; refused without a client
certificate or with one from another CA), and that delete leaves no VM, inventory folder or datastore folder.

The VCHs: `vch1` (defaults: TLS with client verification, a volume store; later a running container), `vch2`
(`--tls-ca` of another CA, an explicit `--docker-port`), `vch3` (`--no-tls`).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vic_ref.cli import SimProcess
from vic_ref.config import vch as vchconfig
from vic_ref.machine import certs

from .conftest import connect, free_port

pytestmark = pytest.mark.timeout(300)

VIC_MACHINE = str(Path(sys.executable).with_name("vic-machine"))
DATASTORE = "LocalDS_0"
ENV_LINE = re.compile(r"^INFO\[\d{4}\] ((?:\S+=\S+ ?)*DOCKER_HOST=\S+.*)$", re.M)


# -- fixtures ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("vm-sim")
    process = SimProcess(workdir / "sim", 0, workdir / "sim.log")
    process.start(60)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def cwd(tmp_path_factory) -> Path:
    """Where vic-machine runs: certificates land in ./<vch name>/ as VIC puts them."""
    return tmp_path_factory.mktemp("vm-cwd")


@pytest.fixture(scope="module")
def si(sim):
    from pyVim.connect import Disconnect
    instance = connect(sim.url, sim.values["VSPHERE_USER"], sim.values["VSPHERE_PASSWORD"])
    yield instance
    Disconnect(instance)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCKER_", "VSPHERE_", "VIC_MACHINE_"))}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def vic_machine(sim, cwd):
    """Run vic-machine with the target in VSPHERE_* (as a user's shell would have it): (rc, stdout, stderr)."""
    def run(*args: str, timeout: float = 120, env: dict | None = None) -> tuple[int, str, str]:
        full = base_env(VSPHERE_URL=sim.url, VSPHERE_USER=sim.values["VSPHERE_USER"],
                        VSPHERE_PASSWORD=sim.values["VSPHERE_PASSWORD"]) if env is None else env
        done = subprocess.run([VIC_MACHINE, *args], cwd=cwd, env=full, capture_output=True, text=True,
                              timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    return run


@pytest.fixture(scope="module")
def docker(cwd):
    """The real docker CLI with a private config and no DOCKER_* from outside: (rc, stdout, stderr)."""
    config = cwd / "docker-config"
    config.mkdir(exist_ok=True)

    def run(*args: str, env: dict | None = None, timeout: float = 90) -> tuple[int, str, str]:
        full = base_env(DOCKER_CONFIG=str(config))
        full.update(env or {})
        done = subprocess.run(["docker", *args], cwd=cwd, env=full, capture_output=True, text=True,
                              timeout=timeout)
        return done.returncode, done.stdout, done.stderr
    return run


def env_values(output: str) -> dict[str, str]:
    """The `DOCKER_...=... DOCKER_HOST=...` line create and inspect print, as a dict."""
    match = ENV_LINE.search(output)
    assert match, f"no Docker environment line in:\n{output}"
    return dict(pair.split("=", 1) for pair in match.group(1).split())


CREATE = ["create", "--compute-resource", "DC0_C0", "--image-store", DATASTORE, "--timeout", "1m0s"]


@pytest.fixture(scope="module")
def vch1(vic_machine, cwd):
    began = time.monotonic()
    rc, out, err = vic_machine(*CREATE, "--name", "vch1", "--volume-store", f"{DATASTORE}/vch1-vols:default")
    assert rc == 0, f"rc={rc}\n{out}\n{err}"
    return {"out": out, "env": env_values(out), "seconds": time.monotonic() - began}


@pytest.fixture(scope="module")
def other_ca(cwd) -> certs.TLSSetup:
    """Another CA with a client certificate of its own (what a site's own PKI would hand out)."""
    return certs.prepare("other", cert_path=cwd / "other-ca")


# -- helpers: what vSphere shows -----------------------------------------------------------------------------------
def dc(si):
    return next(e for e in si.RetrieveContent().rootFolder.childEntity if e.name == "DC0")


def vch_folder(si, name):
    from pyVmomi import vim
    return next((f for f in dc(si).vmFolder.childEntity if isinstance(f, vim.Folder) and f.name == name), None)


def all_vm_names(si) -> set[str]:
    from pyVmomi import vim
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return {vm.name for vm in view.view}
    finally:
        view.DestroyView()


def ds_list(si, path: str) -> list[str] | None:
    """The names in datastore folder `path` ("[ds] folder"), or None when it doesn't exist."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim
    datastore = next(d for d in dc(si).datastore if d.name == DATASTORE)
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"])
    task = datastore.browser.SearchDatastore_Task(datastorePath=path, searchSpec=spec)
    try:
        WaitForTask(task)
    except vim.fault.FileNotFound:
        return None
    return sorted(f.path for f in task.info.result.file)


def make_ds_dir(si, path: str) -> None:
    content = si.RetrieveContent()
    content.fileManager.MakeDirectory(name=path, datacenter=dc(si), createParentDirectories=True)


def tls_args(folder: Path, ca: Path | None = None) -> list[str]:
    return ["--tlsverify", f"--tlscacert={ca or folder / 'ca.pem'}", f"--tlscert={folder / 'cert.pem'}",
            f"--tlskey={folder / 'key.pem'}"]


# -- create --------------------------------------------------------------------------------------------------------
def test_create_prints_what_a_user_needs(vch1, cwd, docker):
    out, env = vch1["out"], vch1["env"]
    assert vch1["seconds"] < 30
    assert "### Installing VCH ####" in out and "Installer completed successfully" in out
    for step in ("Creating appliance on target", "Waiting for major appliance components to launch",
                 "Initialization of appliance successful"):
        assert step in out
    assert env["DOCKER_TLS_VERIFY"] == "1"
    assert env["DOCKER_CERT_PATH"] == str(cwd / "vch1")
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["DOCKER_HOST"])
    assert sorted(p.name for p in (cwd / "vch1").iterdir()) == sorted(
        ["ca.pem", "ca-key.pem", "cert.pem", "key.pem", "server-cert.pem", "server-key.pem", "vch1.env"])
    # the ready-to-paste command works as printed
    match = re.search(r"^INFO\[\d{4}\] (docker -H \S+ --tlsverify .* info)$", out, re.M)
    assert match, out
    rc, info, err = docker(*shlex.split(match.group(1))[1:-1], "info", "--format", "{{.Name}}")
    assert rc == 0 and info.strip() == "vch1", err


def test_the_appliance_as_vsphere_shows_it(vch1, si, cwd, sim):
    from pyVmomi import vim
    folder = vch_folder(si, "vch1")
    assert folder is not None
    [vm] = [c for c in folder.childEntity if isinstance(c, vim.VirtualMachine)]
    assert vm.name == "vch1" and vm.runtime.powerState == "poweredOn"
    assert f"VCH ID: {vm._moId}" in vch1["out"]
    [cdrom] = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom)]
    assert cdrom.backing.fileName == f"[{DATASTORE}] vch1/appliance.iso"
    files = ds_list(si, f"[{DATASTORE}] vch1")
    assert {"appliance.iso", "bootstrap.iso", "vch1.vmx"} <= set(files)
    extra = {o.key: o.value for o in vm.config.extraConfig}
    config = vchconfig.decode(extra)
    assert config.name == "vch1" and config.id
    assert config.storage.image_store == f"[{DATASTORE}]"
    assert config.storage.volume_stores == {"default": f"[{DATASTORE}] vch1-vols"}
    assert config.resources.compute_resource == "/DC0/host/DC0_C0/Resources"
    assert f"127.0.0.1:{config.docker.port}" == vch1["env"]["DOCKER_HOST"]
    assert config.cert.ca_certs == (cwd / "vch1" / "ca.pem").read_bytes()
    assert config.cert.host_cert == (cwd / "vch1" / "server-cert.pem").read_bytes()
    assert config.version == "0.1.0" and config.init.version.build_number == "0"
    password = sim.values["VSPHERE_PASSWORD"]
    assert config.connection.token == password and config.connection.target == sim.url
    assert all(password not in str(v) for v in extra.values())  # sealed in the VMX


def test_tls_refuses_clients_without_our_certificate(vch1, cwd, docker, other_ca):
    host = vch1["env"]["DOCKER_HOST"]
    env = {k: v for k, v in vch1["env"].items() if k.startswith("DOCKER_")}
    rc, out, err = docker("info", "--format", "{{.ID}}", env=env)  # DOCKER_TLS_VERIFY + DOCKER_CERT_PATH, as printed
    assert rc == 0 and out.strip(), err
    empty = cwd / "no-certs"
    empty.mkdir(exist_ok=True)
    rc, out, err = docker("-H", host, "--tlsverify", f"--tlscacert={cwd / 'vch1' / 'ca.pem'}", "info",
                          env={"DOCKER_CERT_PATH": str(empty)})
    assert rc != 0, "a client without a certificate was let in"
    rc, out, err = docker("-H", host, *tls_args(other_ca.cert_path, ca=cwd / "vch1" / "ca.pem"), "info")
    assert rc != 0, "a client certificate from another CA was let in"


def test_create_refuses_an_existing_name(vch1, vic_machine, si):
    before = [c._moId for c in vch_folder(si, "vch1").childEntity]
    rc, out, err = vic_machine(*CREATE, "--name", "vch1")
    assert rc == 1
    assert ('vic-machine create failed: A VCH with the name "vch1" already exists. Please choose a different name '
            'before attempting another install') in err
    assert [c._moId for c in vch_folder(si, "vch1").childEntity] == before


def test_tls_ca_accepts_that_cas_clients_only(vch1, vic_machine, docker, cwd, other_ca, si, busybox_image):
    port = free_port()
    rc, out, err = vic_machine(*CREATE, "--name", "vch2", "--tls-ca", str(other_ca.cert_path / "ca.pem"),
                               "--docker-port", str(port), "--volume-store", f"{DATASTORE}/vch2-vols:default")
    assert rc == 0, f"{out}\n{err}"
    env = env_values(out)
    assert env["DOCKER_HOST"] == f"127.0.0.1:{port}" and env["DOCKER_TLS_VERIFY"] == "1"
    assert f"docker -H 127.0.0.1:{port} --tlsverify info" in out
    server_cert = cwd / "vch2" / "server-cert.pem"  # self-signed: the client trusts it directly
    rc, out, err = docker("-H", f"127.0.0.1:{port}", *tls_args(other_ca.cert_path, ca=server_cert), "info",
                          "--format", "{{.Name}}")
    assert rc == 0 and out.strip() == "vch2", err
    rc, out, err = docker("-H", f"127.0.0.1:{port}", *tls_args(cwd / "vch1", ca=server_cert), "info")
    assert rc != 0, "vch1's client certificate was accepted by a VCH that only trusts the other CA"

    # deleting a VCH without --force removes its stopped containers but keeps its volume store and the volumes in
    # it, even one a container had attached (VIC's warning names the store)
    client = ["-H", f"127.0.0.1:{port}", *tls_args(other_ca.cert_path, ca=server_cert)]
    for args in (("pull", busybox_image.reference), ("volume", "create", "kept"),
                 ("create", "--name", "stopped", "-v", "kept:/data", busybox_image.reference, "true")):
        rc, out, err = docker(*client, *args, timeout=120)
        assert rc == 0, f"docker {' '.join(args)}: {err}"
    cid = out.strip()
    assert f"stopped-{cid[:12]}" in all_vm_names(si)
    make_ds_dir(si, f"[{DATASTORE}] vch2-vols/kept-by-delete")
    rc, out, err = vic_machine("delete", "--name", "vch2")
    assert rc == 0 and "Completed successfully" in out, f"{out}\n{err}"
    assert "the following volume stores will not be removed" in out and f"default: [{DATASTORE}] vch2-vols" in out
    assert vch_folder(si, "vch2") is None and not {"vch2", f"stopped-{cid[:12]}"} & all_vm_names(si)
    assert ds_list(si, f"[{DATASTORE}] vch2") is None and ds_list(si, f"[{DATASTORE}] {cid}") is None
    assert "kept-by-delete" in (ds_list(si, f"[{DATASTORE}] vch2-vols") or [])
    assert "kept.vmdk" in (ds_list(si, f"[{DATASTORE}] vch2-vols/volumes/kept") or []), "the volume's disk went"


def test_no_tls_is_plain_http(vic_machine, docker, cwd, si):
    rc, out, err = vic_machine(*CREATE, "--name", "vch3", "--no-tls")
    assert rc == 0, f"{out}\n{err}"
    assert "Configuring without TLS - all communications will be insecure" in out
    env = env_values(out)
    assert set(env) == {"DOCKER_HOST", "COMPOSE_TLS_VERSION"}
    rc, info, err = docker("-H", env["DOCKER_HOST"], "info", "--format", "{{.Name}}")
    assert rc == 0 and info.strip() == "vch3", err
    rc, out, err = vic_machine("delete", "--name", "vch3")
    assert rc == 0 and "Completed successfully" in out, f"{out}\n{err}"
    assert vch_folder(si, "vch3") is None and ds_list(si, f"[{DATASTORE}] vch3") is None


# -- inspect and ls ------------------------------------------------------------------------------------------------
def test_inspect(vch1, vic_machine, si):
    vm = [c for c in vch_folder(si, "vch1").childEntity if c.name == "vch1"][0]
    rc, out, err = vic_machine("inspect", "--name", "vch1")
    assert rc == 0, f"{out}\n{err}"
    assert f"VCH ID: {vm._moId}" in out
    assert "VCH power state: poweredOn" in out
    assert f"Image store: [{DATASTORE}]" in out and f"default: [{DATASTORE}] vch1-vols" in out
    assert "TLS: client certificates verified against 1 CA certificate" in out
    assert re.search(r"VCH version: 0\.1\.0-0-\S+", out) and "Installer has same version as VCH" in out
    assert env_values(out) == vch1["env"]  # the client certificates in ./vch1 were found again
    assert out.rstrip().endswith("Completed successfully")
    rc, by_id, err = vic_machine("inspect", "--id", vm._moId)
    assert rc == 0 and "VCH name: vch1" in by_id, err


def test_ls_with_target_flags(vch1, vic_machine, sim, si):
    vm = [c for c in vch_folder(si, "vch1").childEntity if c.name == "vch1"][0]
    rc, out, err = vic_machine("ls", "--target", sim.url, "--user", sim.values["VSPHERE_USER"], "--password",
                               sim.values["VSPHERE_PASSWORD"], env=base_env())
    assert rc == 0, f"{out}\n{err}"
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("ID"))
    assert re.split(r"\s{2,}", lines[header]) == ["ID", "PATH", "NAME", "VERSION", "UPGRADE STATUS"]
    rows = [re.split(r"\s{2,}", line) for line in lines[header + 1:] if line.strip()]
    row = next(r for r in rows if r[2] == "vch1")
    assert row[0] == vm._moId and row[1] == "/DC0/host/DC0_C0/Resources"
    assert re.fullmatch(r"0\.1\.0-0-\S+", row[3]) and row[4] == "Up to date"


# -- delete --------------------------------------------------------------------------------------------------------
def test_delete_refuses_running_containers_without_force(vch1, vic_machine, docker, si, busybox_image):
    env = {k: v for k, v in vch1["env"].items() if k.startswith("DOCKER_")}
    rc, out, err = docker("pull", busybox_image.reference, env=env, timeout=120)
    assert rc == 0, err
    rc, out, err = docker("run", "-d", "--name", "top1", busybox_image.reference, "top", env=env)
    assert rc == 0, err
    cid = out.strip()
    config = vchconfig.decode({o.key: o.value for o in [
        c for c in vch_folder(si, "vch1").childEntity if c.name == "vch1"][0].config.extraConfig})
    container_vm = f"top1-{cid[:12]}"
    assert container_vm in all_vm_names(si)

    rc, out, err = vic_machine("delete", "--name", "vch1")
    assert rc == 1
    assert f'vic-machine delete failed: VM "{container_vm}" is powered on' in err
    assert "Specify --force to force delete" in out
    assert {"vch1", container_vm} <= all_vm_names(si)  # nothing removed

    rc, out, err = vic_machine("delete", "--name", "vch1", "--force")
    assert rc == 0, f"{out}\n{err}"
    assert "Completed successfully" in out
    assert f'Deleting volume store "default" on Datastore "{DATASTORE}" at path "vch1-vols"' in out
    assert not {"vch1", container_vm} & all_vm_names(si)
    assert vch_folder(si, "vch1") is None
    for folder in ("vch1", cid, f"VIC/{config.id}", "vch1-vols"):
        assert ds_list(si, f"[{DATASTORE}] {folder}") is None, f"[{DATASTORE}] {folder} is left"


def test_ls_after_delete(vic_machine):
    rc, out, err = vic_machine("ls")
    assert rc == 0, err
    assert "vch1" not in out and "vch2" not in out and "vch3" not in out
