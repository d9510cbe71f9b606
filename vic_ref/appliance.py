"""The VCH appliance: what the appliance VM boots (`python -m vic_ref.appliance`, from the appliance ISO).

Boot: read the VCH config from guestinfo (the guest channel is the only way in), open a vSphere session to the target,
build the port layer (which rebuilds its state from vSphere) and the Docker API app, serve it on the configured
address (TLS if configured), then report: `guestinfo.vice..init.sessions|docker-personality.started` = "true" (or the
error that stopped the boot, which `vic-ref up` shows), and the VM's guest IP. Guest operations: `reload` is logged
and accepted, anything else refused as the tether refuses it. A power off (SIGTERM, from the channel or the sim)
stops the server, the port layer and the session, and the process exits 0.

Until `vic_ref.portlayer` and `vic_ref.personality.server` exist, a minimal app answers `/_ping` so the boot path
can be tested; the real app is used as soon as both import.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import ssl
import sys
import tempfile
import time
from typing import Any

from . import errors
from .config import vch as vchconfig
from .config.vch import VCHConfig
from .guest import ChannelClosed, GuestChannel, GuestChannelError, guest_dir
from .guest import Operation as GuestOperation
from .trace import Operation

log = logging.getLogger("vic_ref.appliance")

API_VERSION = "1.41"  # what the placeholder app claims on /_ping until the personality answers for itself
SHUTDOWN_GRACE = 3.0  # seconds the server gets to finish requests; the sim SIGKILLs us 5 s after a power off


def load_app_factory():
    """(PortLayer, make_app) once both exist; None while either package is not written yet. An import error
    inside them is a bug, and is raised."""
    wanted = {"vic_ref.portlayer", "vic_ref.personality", "vic_ref.personality.server"}
    try:
        from .personality.server import make_app
        from .portlayer import PortLayer
    except ModuleNotFoundError as err:
        if err.name in wanted:
            return None
        raise
    return PortLayer, make_app


def placeholder_app(config: VCHConfig):
    """A Docker API that only answers `/_ping` (HEAD and GET, with and without a version prefix)."""
    from aiohttp import web

    headers = {"API-Version": API_VERSION, "OSType": "linux", "Docker-Experimental": "false",
               "Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}

    async def ping(request):
        return web.Response(text="OK", headers=headers)

    app = web.Application()
    for path in ("/_ping", r"/v{version:[0-9.]+}/_ping"):
        app.router.add_route("GET", path, ping)
        app.router.add_route("HEAD", path, ping)
    return app


class Appliance:
    def __init__(self, channel: GuestChannel, config: VCHConfig):
        self.channel = channel
        self.config = config
        self.op = Operation.new(f"VCH {config.name}")
        self.session = None
        self.portlayer: Any = None
        self.runner = None
        self.stop = asyncio.Event()

    # -- boot -----------------------------------------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop.set)
        started = time.monotonic()
        try:
            app = await self.build()
            if self.stop.is_set():  # powered off while booting
                await self.shutdown()
                return 0
            await self.serve(app)
        except Exception as err:
            self.op.exception("boot failed: %s", err)
            await asyncio.to_thread(self.report_started, _one_line(err))
            await self.shutdown()
            return 1
        await asyncio.to_thread(self.announce)
        self.op.info("VCH %s (%s) serves the Docker API on %s%s after %.2fs", self.config.name, self.config.id,
                     self.config.docker_host, " with TLS" if self.config.tls else "", time.monotonic() - started)
        await self.stop.wait()
        self.op.info("stopping")
        await self.shutdown()
        return 0

    async def build(self):
        from .machine.deploy import target_of
        from .vsphere import Session

        target = target_of(self.config)
        self.session = await asyncio.to_thread(Session.open, self.op, target, True)
        factory = load_app_factory()
        if factory is None:
            self.op.warning("vic_ref.portlayer / vic_ref.personality not available yet: serving /_ping only")
            return placeholder_app(self.config)
        port_layer_cls, make_app = factory
        self.portlayer = await asyncio.to_thread(port_layer_cls, self.op, self.session, self.config, self.channel)
        app = make_app(self.portlayer, self.config)
        if inspect.isawaitable(app):
            app = await app
        return app

    async def serve(self, app) -> None:
        from aiohttp import web

        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.config.docker.address, self.config.docker.port,
                           ssl_context=self.ssl_context(), shutdown_timeout=SHUTDOWN_GRACE, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            raise errors.Unavailable(f"cannot listen on {self.config.docker.address}:{self.config.docker.port}: "
                                     f"{err.strerror or err}") from err

    def ssl_context(self) -> ssl.SSLContext | None:
        cert = self.config.cert
        if not cert.host_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: the key goes to a private file in the guest's own directory
        directory = guest_dir() or tempfile.gettempdir()
        with tempfile.TemporaryDirectory(dir=directory, prefix="tls-") as tmp:
            cert_file, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
            with open(cert_file, "wb") as f:
                f.write(cert.host_cert)
            with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(cert.host_key)
            context.load_cert_chain(cert_file, key_file)
        if cert.ca_certs:
            context.verify_mode = ssl.CERT_REQUIRED  # --tlsverify: clients present a certificate from our CA
            context.load_verify_locations(cadata=cert.ca_certs.decode("ascii"))
        return context

    # -- the guest side -------------------------------------------------------------------------------------------
    def announce(self) -> None:
        """Tell vSphere we are up: guest operations, the guest's IP, and the personality's started flag (last,
        since `vic-ref up` takes it as the end of the boot)."""
        self.channel.accept_logins([self.config.id])
        self.channel.serve_operations(self.handle_operation)
        address = self.config.docker.address
        self.channel.report(ip_address="127.0.0.1" if address in ("0.0.0.0", "") else address,
                            host_name=self.config.name, full_name=f"vic-ref appliance {self.config.version}")
        self.report_started("true")

    def report_started(self, value: str) -> None:
        try:
            self.channel.set(vchconfig.session_started_key(), value)
        except GuestChannelError as err:
            self.op.warning("cannot report %r: %s", value, err)

    def handle_operation(self, op: GuestOperation):
        self.op.info("guest operation %s %r %r as %s", op.kind, op.program, op.arguments, op.user)
        if op.kind == "start" and op.program == "reload":
            # The VCH keeps no state of its own: its config is reread at the next boot.
            return 0
        if op.kind != "start":
            op.reject(f"no process {op.pid}", fault="GuestProcessNotFound")
            return None
        op.reject(f'unknown command "{op.program}"')
        return None

    # -- shutdown -------------------------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        if self.runner is not None:
            try:
                await asyncio.wait_for(self.runner.cleanup(), SHUTDOWN_GRACE)
            except (TimeoutError, Exception) as err:  # noqa: B014 - whatever happens, go on closing
                self.op.warning("stopping the server: %s", err or type(err).__name__)
        close = getattr(self.portlayer, "close", None)
        if close is not None:
            try:
                if inspect.iscoroutinefunction(close):
                    await asyncio.wait_for(close(self.op), SHUTDOWN_GRACE)
                else:
                    await asyncio.to_thread(close, self.op)
            except Exception as err:
                self.op.warning("closing the port layer: %s", err)
        if self.session is not None:
            await asyncio.to_thread(self.session.close, self.op)


def select_release(config: VCHConfig, booted: str) -> VCHConfig:
    """The release this boot runs is the version of the appliance ISO it booted (DESIGN-DECISIONS §5): its data
    version decides how new containers are written. A config written by a newer release is refused (a downgrade
    goes through `vic-machine upgrade --rollback`); an older one is read as it is (vic-machine upgrade migrates it).
    An ISO of a version vic-ref does not know (or none) leaves the config's own version in force."""
    import dataclasses

    from .config.executor import Build
    from .migration import release_data_version
    data_version = release_data_version(booted)
    if data_version is None:
        return config
    if config.plugin_version > data_version:
        raise errors.InvalidArgument(
            f"the VCH configuration has data version {config.plugin_version}, newer than appliance {booted} "
            f"supports ({data_version}): roll back with vic-machine upgrade --rollback")
    build = config.init.version or Build()
    if build.version == booted and build.plugin_version == data_version:
        return config
    log.info("appliance %s boots a VCH configured for %s (data version %d); running as %s (data version %d)",
             booted, build.version or "unknown", config.plugin_version, booted, data_version)
    init = dataclasses.replace(config.init, version=dataclasses.replace(build, version=booted,
                                                                         plugin_version=data_version))
    return dataclasses.replace(config, init=init)


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:500]


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # a power off SIGTERMs us (the channel's default): the event loop's handler takes it from there
        channel = GuestChannel.from_env()
    except GuestChannelError as err:
        log.error("%s", err)
        return 1
    try:
        config = vchconfig.decode(channel.items("guestinfo."))
        if config.init.debug:
            logging.getLogger().setLevel(logging.DEBUG)
        config = select_release(config, channel.info.get("version") or "")
        config.validate()
    except ChannelClosed:
        return 0
    except errors.VicError as err:
        log.error("%s", err)
        try:
            channel.set(vchconfig.session_started_key(), _one_line(err))
        except GuestChannelError:
            pass
        return 1
    try:
        return asyncio.run(Appliance(channel, config).run())
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
