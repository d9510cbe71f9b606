"""Robot Framework keywords for the vic-ref suites: a VCH to run against, the docker CLI, interactive terminals.

Target: by default `Start VCH` runs `vic-ref up` (embedded sim + VCH) in a temporary folder, starts Debian's
docker-registry and pushes the busybox test image to it. To run the same suites against another VCH (a real one on
vCenter), set `VIC_REF_DOCKER_HOST` (plus `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` if it uses TLS) and
`VIC_REF_BUSYBOX` (an image reference that VCH can pull); then nothing is started here.

Keywords are thin (one docker CLI call each), as VIC's own suites are: `Run Docker` returns the exit code and the
combined output, like VIC's `Run And Return Rc And Output  docker %{VCH-PARAMS} ...`.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pexpect
from robot.api import logger
from robot.api.deco import keyword, library

from vic_ref.testing.processes import processes_running, zombies, zombies_in_namespace_of

DEFAULT_TIMEOUT = 120.0


@library(scope="GLOBAL", auto_keywords=False)
class VicRef:
    def __init__(self) -> None:
        self._root: Path | None = None
        self._vch = None
        self._registry = None
        self._env: dict[str, str] = {}
        self._busybox = ""
        self._terminals: list[pexpect.spawn] = []
        self._nfs = None
        self._nfs_export: Path | None = None

    @contextlib.contextmanager
    def _vms(self):
        """{display name: VM} over one pyVmomi session: the embedded sim, or VSPHERE_URL / VSPHERE_USER /
        VSPHERE_PASSWORD for an external target."""
        from urllib.parse import urlsplit

        from pyVim.connect import Disconnect, SmartConnect
        from pyVmomi import vim
        if self._vch is not None:
            url, user, password = self._vch.vsphere_url, self._vch.vsphere_user, self._vch.vsphere_password
        else:
            url, user, password = (os.environ.get(k, "") for k in ("VSPHERE_URL", "VSPHERE_USER", "VSPHERE_PASSWORD"))
        parts = urlsplit(url)
        si = SmartConnect(host=parts.hostname, port=parts.port, user=user, pwd=password, protocol=parts.scheme,
                          disableSslCertValidation=True)
        try:
            content = si.RetrieveContent()
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
            try:
                yield {vm.name: vm for vm in view.view}
            finally:
                view.DestroyView()
        finally:
            Disconnect(si)

    # -- the target ---------------------------------------------------------------------------------------------------
    @keyword
    def start_vch(self) -> str:
        """Start (or, with VIC_REF_DOCKER_HOST, find) the VCH the suite runs against; its DOCKER_HOST."""
        if self._env:
            return self._env["DOCKER_HOST"]
        config = Path(tempfile.mkdtemp(prefix="vic-ref-robot-docker-config-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(config)
        external = os.environ.get("VIC_REF_DOCKER_HOST")
        if external:
            env["DOCKER_HOST"] = external
            for name in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
                if os.environ.get(name):
                    env[name] = os.environ[name]
            self._busybox = os.environ.get("VIC_REF_BUSYBOX", "busybox")
            self._root = config
        else:
            from vic_ref.testing.registry import push_busybox, start_registry
            from vic_ref.testing.vch import start_vch
            self._root = Path(tempfile.mkdtemp(prefix="vic-ref-robot-"))
            self._registry = start_registry(self._root / "registry")
            self._busybox = push_busybox(self._registry).reference
            self._vch = start_vch(self._root / "vch")
            env.update({k: v for k, v in self._vch.values.items() if k.startswith("DOCKER_")})
            env["DOCKER_CONFIG"] = str(config)
        self._env = env
        logger.info(f"VCH at {env['DOCKER_HOST']}, busybox image {self._busybox}")
        return env["DOCKER_HOST"]

    @keyword
    def stop_vch(self) -> None:
        """Stop what `Start VCH` started (nothing for an external VCH) and close open terminals."""
        for child in self._terminals:
            if child.isalive():
                child.terminate(force=True)
        self._terminals.clear()
        self.stop_nfs_server()
        if self._vch is not None:
            self._vch.stop()
            self._vch = None
        if self._registry is not None:
            self._registry.stop()
            self._registry = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        self._env = {}

    @keyword
    def busybox_image(self) -> str:
        """The busybox image reference the suites pull and run (pulled into the VCH on first use)."""
        self._require()
        return self._busybox

    @keyword
    def restart_vch(self) -> None:
        """Stop the embedded VCH's appliance process and power the appliance on again (state comes back from
        vSphere). Only for the embedded target."""
        if self._vch is None:
            raise AssertionError("Restart VCH needs the embedded target (VIC_REF_DOCKER_HOST is set)")
        from pyVim.task import WaitForTask
        with self._vms() as vms:
            appliance = vms[self._vch.name]
            WaitForTask(appliance.PowerOffVM_Task())
            WaitForTask(appliance.PowerOnVM_Task())
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while self.run_docker("version")[0] != 0:
            if time.monotonic() > deadline:
                raise AssertionError("the VCH did not answer again after its restart")
            time.sleep(0.5)

    # -- the docker CLI ------------------------------------------------------------------------------------------------
    @keyword
    def run_docker(self, *args: str, stdin: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        """`docker <args>`: (exit code, stdout and stderr together, without the final newline)."""
        rc, out, err = self.run_docker_separately(*args, stdin=stdin, timeout=timeout)
        return rc, (out + err).rstrip("\n")

    @keyword
    def run_docker_separately(self, *args: str, stdin: str | None = None,
                              timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str, str]:
        """`docker <args>`: (exit code, stdout, stderr). The output is as docker wrote it (a tty's `\\r\\n` kept)."""
        self._require()
        logger.info("docker " + " ".join(args))
        try:
            done = subprocess.run(["docker", *args], env=self._env,
                                  input=None if stdin is None else stdin.encode(), capture_output=True,
                                  timeout=float(timeout))
        except subprocess.TimeoutExpired as err:
            raise AssertionError(f"docker {' '.join(args)} took more than {timeout}s") from err
        out = done.stdout.decode("utf-8", "replace")
        err = done.stderr.decode("utf-8", "replace")
        logger.info(f"rc={done.returncode}\nstdout:\n{out}\nstderr:\n{err}")
        return done.returncode, out, err

    @keyword
    def docker_should_succeed(self, *args: str, stdin: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
        """`docker <args>` must exit 0; its stdout without the final newline."""
        rc, out, err = self.run_docker_separately(*args, stdin=stdin, timeout=timeout)
        if rc != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {rc}: {err.strip() or out.strip()}")
        return out.rstrip("\n")

    @keyword
    def remove_all_containers(self) -> None:
        ids = self.docker_should_succeed("ps", "-aq").split()
        if ids:
            self.docker_should_succeed("rm", "-f", *ids)

    # -- terminals (a pty for the CLI, as a user at a terminal has) ----------------------------------------------------
    @keyword
    def start_terminal(self, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
        """Start `docker <args>` on a pty of its own (for -t, attach, exec -it); a handle for the keywords below."""
        self._require()
        child = pexpect.spawn("docker", list(args), env=self._env, dimensions=(int(rows), int(cols)),
                              timeout=DEFAULT_TIMEOUT, encoding="utf-8", codec_errors="replace")
        self._terminals.append(child)
        return child

    @keyword
    def type_line(self, terminal: pexpect.spawn, text: str) -> None:
        terminal.sendline(text)

    @keyword
    def type_control(self, terminal: pexpect.spawn, key: str) -> None:
        """Type Ctrl+`key` (e.g. `p`, `q`, `d`)."""
        terminal.sendcontrol(key)

    @keyword
    def terminal_should_show(self, terminal: pexpect.spawn, pattern: str, timeout: float = 60) -> str:
        """Wait until the terminal shows `pattern` (a regular expression); what came before it."""
        try:
            terminal.expect(pattern, timeout=float(timeout))
        except (pexpect.TIMEOUT, pexpect.EOF) as err:
            raise AssertionError(f"the terminal did not show {pattern!r}; it showed {terminal.before!r}") from err
        return terminal.before + terminal.after

    @keyword
    def resize_terminal(self, terminal: pexpect.spawn, rows: int, cols: int) -> None:
        terminal.setwinsize(int(rows), int(cols))

    @keyword
    def terminal_should_exit_with(self, terminal: pexpect.spawn, code: int, timeout: float = 60) -> None:
        status = self.wait_for_terminal_exit(terminal, timeout)
        if status != int(code):
            raise AssertionError(f"exit code {status}, expected {code}")

    @keyword
    def wait_for_terminal_exit(self, terminal: pexpect.spawn, timeout: float = 60) -> int | None:
        """Wait until the terminal's command ends; its exit code (None if a signal ended docker itself)."""
        try:
            terminal.expect(pexpect.EOF, timeout=float(timeout))
        except pexpect.TIMEOUT as err:
            raise AssertionError(f"the terminal's command did not end; it showed {terminal.before!r}") from err
        terminal.close()
        return terminal.exitstatus

    # -- the host's view ----------------------------------------------------------------------------------------------
    @keyword
    def container_should_have_no_zombies(self, marker: str) -> None:
        """No zombie in the PID namespace of the process whose command line has `marker` (spaces as in argv), nor
        below any tether. Only for the embedded target (containers are processes on this machine)."""
        pids = processes_running(marker.replace(" ", "\0").encode())
        if len(pids) != 1:
            raise AssertionError(f"{len(pids)} processes run {marker!r}")
        left = zombies_in_namespace_of(pids[0]) + zombies(under=self._vch.process.pid if self._vch else None)
        if left:
            raise AssertionError("zombies: " + "; ".join(left))

    @keyword
    def should_be_a_timestamped_line(self, line: str, text: str) -> None:
        if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z " + re.escape(text), line):
            raise AssertionError(f"{line!r} is not an RFC 3339 timestamp with nanoseconds and {text!r}")

    def _require(self) -> None:
        if not self._env:
            raise AssertionError("no VCH: call Start VCH first (in Suite Setup)")

    # -- volumes (1-19..1-22) ------------------------------------------------------------------------------------------
    @keyword
    def push_volume_test_images(self) -> dict:
        """Busybox images with VOLUME lines (`vol-example`: /etc/example with testfile.txt; `vol-mongo`: /data/db and
        /data/configdb, as mongo's), pushed to the embedded registry: {name: reference}. With an external target,
        VIC_REF_VOLUME_EXAMPLE / VIC_REF_VOLUME_MONGO name images it can pull."""
        self._require()
        if self._registry is None:
            return {"vol-example": os.environ.get("VIC_REF_VOLUME_EXAMPLE", ""),
                    "vol-mongo": os.environ.get("VIC_REF_VOLUME_MONGO", "")}
        from vic_ref.testing.registry import busybox_layer
        from vic_ref.testing.volume_images import push_volume_images
        return {name: image.reference for name, image in push_volume_images(self._registry, busybox_layer()).items()}

    @keyword
    def vch_is_running(self) -> bool:
        """Whether `Start VCH` has a VCH up already (a suite run alone starts and stops its own)."""
        return bool(self._env)

    # -- vSphere's view (1-36) -----------------------------------------------------------------------------------------
    @keyword
    def vm_should_exist(self, display_name: str) -> None:
        """A VM with this display name exists (VIC's `govc vm.info <name>`), seen with pyVmomi: the embedded sim, or
        VSPHERE_URL / VSPHERE_USER / VSPHERE_PASSWORD for an external target."""
        if self._vch is None and not os.environ.get("VSPHERE_URL"):
            raise AssertionError("VM Should Exist needs the embedded target or VSPHERE_URL")
        with self._vms() as vms:
            names = list(vms)
        if display_name not in names:
            raise AssertionError(f"no VM named {display_name}")

    # -- upgrade (11-01) -----------------------------------------------------------------------------------------------
    @keyword
    def start_old_vch(self) -> str:
        """Like `Start VCH` on the embedded target, but the VCH runs the older release vic-ref upgrades from
        (`vic-ref up --appliance-version`, deployed by vic-machine create's code); its DOCKER_HOST."""
        if self._env:
            return self._env["DOCKER_HOST"]
        from vic_ref.migration import PREVIOUS_RELEASE
        from vic_ref.testing.registry import push_busybox, start_registry
        from vic_ref.testing.vch import start_vch
        config = Path(tempfile.mkdtemp(prefix="vic-ref-robot-docker-config-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self._root = Path(tempfile.mkdtemp(prefix="vic-ref-robot-"))
        self._registry = start_registry(self._root / "registry")
        self._busybox = push_busybox(self._registry).reference
        self._vch = start_vch(self._root / "vch", extra_args=("--appliance-version", PREVIOUS_RELEASE))
        env.update({k: v for k, v in self._vch.values.items() if k.startswith("DOCKER_")})
        env["DOCKER_CONFIG"] = str(config)
        self._env = env
        return env["DOCKER_HOST"]

    @keyword
    def run_vic_machine(self, *args: str, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        """`vic-machine <args>` against the embedded sim (VSPHERE_* set): (exit code, stdout and stderr)."""
        if self._vch is None:
            raise AssertionError("Run VIC Machine needs the embedded target")
        import sys
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "VSPHERE_", "VIC_MACHINE_"))}
        env.update(VSPHERE_URL=self._vch.vsphere_url, VSPHERE_USER=self._vch.vsphere_user,
                   VSPHERE_PASSWORD=self._vch.vsphere_password)
        argv = [str(Path(sys.executable).with_name("vic-machine")), *args]
        logger.info(" ".join(argv))
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=float(timeout),
                              cwd=self._vch.workdir)
        output = (done.stdout + done.stderr).rstrip("\n")
        logger.info(f"rc={done.returncode}\n{output}")
        return done.returncode, output

    # -- an NFS server ------------------------------------------------------------------------------------------------
    @keyword
    def start_nfs_server(self) -> str:
        """An NFS export for volume stores: Debian's nfs-ganesha started here (exporting a temporary folder at
        /mnt/nfs-vol); its URL as VIC's suites give it, by this machine's FQDN. Only for the embedded target."""
        if self._vch is None:
            raise AssertionError("Start NFS Server needs the embedded target")
        import socket

        from vic_ref.testing.nfs_server import NfsServer
        if self._nfs is None:
            export = Path(tempfile.mkdtemp(prefix="nfs-export-", dir=self._root))
            self._nfs = NfsServer(export).start()
            self._nfs_export = export
        return self._nfs.url(socket.gethostname())

    @keyword
    def stop_nfs_server(self) -> None:
        if self._nfs is not None:
            self._nfs.stop()
            self._nfs = None

    @keyword
    def nfs_export_file_should_contain(self, path: str, text: str) -> None:
        """The file at `path` under the export's folder (what the VCH wrote, read on the server's side)."""
        if self._nfs_export is None:
            raise AssertionError("no NFS server was started")
        content = (self._nfs_export / path).read_text()
        if text not in content:
            raise AssertionError(f"{text!r} not in {path}: {content!r}")

    @keyword
    def start_upgrade_in_background(self, *args: str) -> subprocess.Popen:
        """`vic-machine upgrade <args>` started and left running; `Wait For VIC Machine` collects it."""
        import sys
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "VSPHERE_", "VIC_MACHINE_"))}
        env.update(VSPHERE_URL=self._vch.vsphere_url, VSPHERE_USER=self._vch.vsphere_user,
                   VSPHERE_PASSWORD=self._vch.vsphere_password)
        return subprocess.Popen([str(Path(sys.executable).with_name("vic-machine")), "upgrade", *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=self._vch.workdir)

    @keyword
    def wait_for_vic_machine(self, process: subprocess.Popen, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str]:
        out, _ = process.communicate(timeout=float(timeout))
        logger.info(f"rc={process.returncode}\n{out}")
        return process.returncode, out.rstrip("\n")

    @keyword
    def slow_down_sim_method(self, method: str, seconds: float) -> None:
        """The sim answers the next call of `method` `seconds` late (a busy vSphere target), through its control
        API's fault rules."""
        import json
        import urllib.request
        from urllib.parse import urlsplit
        url = urlsplit(self._vch.vsphere_url)
        body = json.dumps({"method": method, "delay": float(seconds), "count": 1}).encode()
        request = urllib.request.Request(f"{url.scheme}://{url.netloc}/_sim/faults", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).read()

    @keyword
    def vch_version(self) -> str:
        """The VCH's release as `vic-machine inspect` shows it (e.g. 0.0.9)."""
        rc, out = self.run_vic_machine("inspect", "--name", self._vch.name)
        if rc != 0:
            raise AssertionError(f"vic-machine inspect failed: {out}")
        line = next(x for x in out.splitlines() if "VCH version:" in x)
        return line.split("VCH version:", 1)[1].strip().split("-", 1)[0]

    @keyword
    def appliance_snapshots(self) -> list:
        """The names of the appliance VM's snapshots (govc snapshot.tree's)."""
        with self._vms() as vms:
            appliance = vms[self._vch.name]
            names, stack = [], list(appliance.snapshot.rootSnapshotList if appliance.snapshot else [])
            while stack:
                node = stack.pop()
                names.append(node.name)
                stack.extend(node.childSnapshotList or [])
            return names
