"""A running VCH for tests: `vic-ref up` as a subprocess, read until READY, and the ways to talk to it.

    with start_vch(tmp_path) as vch:
        rc, out, err = vch.docker("version")
        client = vch.docker_client()

The docker CLI runs with a private DOCKER_CONFIG (no user contexts or credentials leak in) and only the DOCKER_*
variables `vic-ref up` printed.
"""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_START_TIMEOUT = 120.0
DEFAULT_DOCKER_TIMEOUT = 60.0


class VCHStartError(RuntimeError):
    pass


@dataclass
class RunningVCH:
    workdir: Path
    process: subprocess.Popen
    values: dict[str, str] = field(default_factory=dict)  # the NAME=value lines `vic-ref up` printed
    name: str = "vic-ref"
    log_path: Path | None = None
    start_seconds: float = 0.0

    # -- what vic-ref up printed --------------------------------------------------------------------------------
    @property
    def docker_host(self) -> str:
        return self.values["DOCKER_HOST"]

    @property
    def docker_port(self) -> int:
        return int(self.docker_host.rsplit(":", 1)[1])

    @property
    def tls(self) -> bool:
        return self.values.get("DOCKER_TLS_VERIFY") == "1"

    @property
    def cert_path(self) -> Path | None:
        path = self.values.get("DOCKER_CERT_PATH")
        return Path(path) if path else None

    @property
    def vsphere_url(self) -> str:
        return self.values["VSPHERE_URL"]

    @property
    def vsphere_user(self) -> str:
        return self.values["VSPHERE_USER"]

    @property
    def vsphere_password(self) -> str:
        return self.values["VSPHERE_PASSWORD"]

    @property
    def control_url(self) -> str:
        """The sim's control API (fault rules, counters)."""
        parts = urlsplit(self.vsphere_url)
        return f"{parts.scheme}://{parts.netloc}/_sim"

    @property
    def guest_log(self) -> Path:
        """The appliance's console log, on the sim's datastore."""
        return self.workdir / "sim" / "datastores" / "LocalDS_0" / self.name / "guest.log"

    @property
    def base_url(self) -> str:
        """The Docker API as an http(s) URL, for raw HTTP clients."""
        return ("https://" if self.tls else "http://") + self.docker_host.split("://", 1)[1]

    # -- clients ------------------------------------------------------------------------------------------------
    def docker_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update({k: v for k, v in self.values.items() if k.startswith("DOCKER_")})
        config = self.workdir / "docker-config"
        config.mkdir(exist_ok=True)
        env["DOCKER_CONFIG"] = str(config)
        return env

    def docker(self, *args: str, timeout: float = DEFAULT_DOCKER_TIMEOUT, input: str | None = None,
               env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """Run the real docker CLI against this VCH: (returncode, stdout, stderr); rc 124 on timeout."""
        full_env = self.docker_env()
        full_env.update(env or {})
        try:
            done = subprocess.run(["docker", *args], env=full_env, input=input, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as err:
            out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            errtext = err.stderr.decode() if isinstance(err.stderr, bytes) else (err.stderr or "")
            return 124, out, errtext + f"\n(timed out after {timeout:g}s)"
        return done.returncode, done.stdout, done.stderr

    def docker_client(self, **kwargs):
        """A docker-py DockerClient for this VCH (TLS-verified when the VCH has TLS)."""
        import docker
        kwargs.setdefault("timeout", int(DEFAULT_DOCKER_TIMEOUT))
        if self.tls:
            certs = self.cert_path
            kwargs["tls"] = docker.tls.TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
                                                 ca_cert=str(certs / "ca.pem"), verify=True)
        return docker.DockerClient(base_url=self.docker_host, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM `vic-ref up` (it powers the VCH off and stops the sim); SIGKILL if it hangs. Its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def __enter__(self) -> RunningVCH:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_vch(workdir: str | Path, *, docker_port: int | None = None, sim_port: int | None = None,
              tls: bool = False, name: str | None = None, timeout: float = DEFAULT_START_TIMEOUT,
              extra_args: tuple[str, ...] = ()) -> RunningVCH:
    """Start `vic-ref up` on `workdir` and wait for READY; VCHStartError (with its log) if it fails."""
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "vic_ref.cli", "up", "--workdir", str(workdir), "--log-level", "INFO",
            "--timeout", str(timeout)]
    if docker_port is not None:
        argv += ["--docker-port", str(docker_port)]
    if sim_port is not None:
        argv += ["--sim-port", str(sim_port)]
    if tls:
        argv.append("--tls")
    if name:
        argv += ["--name", name]
    argv += list(extra_args)
    log_path = workdir / "vic-ref-up.log"
    began = time.monotonic()
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log_file, stdin=subprocess.DEVNULL,
                                   cwd=str(Path(__file__).resolve().parents[2]))
    lines: queue.Queue = queue.Queue()

    def read():
        for raw in process.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, name="vic-ref-up-stdout", daemon=True).start()
    vch = RunningVCH(workdir, process, name=name or "vic-ref", log_path=log_path)
    deadline = began + timeout + 10  # vic-ref up bounds its own waits by `timeout`; this is the backstop
    while True:
        try:
            line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            vch.stop()
            raise VCHStartError(f"vic-ref up printed no READY within {timeout:g}s:\n{_tail(log_path)}") from None
        if line is None:
            code = process.wait()
            raise VCHStartError(f"vic-ref up exited with status {code} before READY:\n{_tail(log_path)}")
        if line == "READY":
            vch.start_seconds = time.monotonic() - began
            return vch
        key, sep, value = line.partition("=")
        if sep:
            vch.values[key] = value


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
