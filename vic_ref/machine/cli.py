"""`vic-machine`: create, delete, inspect and list VCHs on any vim25 target (VIC's `cmd/vic-machine`).

    vic-machine create  --target URL --user U --password P [--name N] [--compute-resource R] [--image-store DS]
                        [--volume-store DS/PATH:LABEL]... [--tls-ca FILE]... [--no-tlsverify | --no-tls] ...
    vic-machine delete  --target ... --name N [--force]
    vic-machine inspect --target ... --name N
    vic-machine ls      --target ...
    vic-machine upgrade --target ... --name N [--force] [--timeout D] [--reset-progress] [--rollback]
    vic-machine rollback --target ... --name N      (the same as upgrade --rollback)
    vic-machine configure --target ... --name N [--volume-store DS/PATH:LABEL]... [--timeout D] [--reset-progress]
    vic-machine version

The target comes from `--target`/`--user`/`--password`, else VIC's VIC_MACHINE_TARGET/USER/PASSWORD, else
VSPHERE_URL/USER/PASSWORD. Flags are VIC's (long and short names, `--force=true` style booleans, Go durations for
`--timeout`); VIC flags that make no sense for vic-ref (ISOs, port groups) are accepted and ignored with a warning.

Commands are a table (`COMMANDS`): each adds its flags from the shared groups below and runs a function of
`commands.py` (upgrade, rollback and configure: `upgrade.py`).
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .. import errors
from ..config import vch as vchconfig
from ..trace import Operation
from . import certs, commands, flags
from . import upgrade as upgrades
from .output import Output, route_logs

PROG = "vic-machine"
DEFAULT_TIMEOUT = "3m0s"


# -- argparse plumbing ---------------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """Exit 1 (not argparse's 2) on a usage error, as vic-machine does."""

    def error(self, message: str):
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def _typed(parse: Callable, name: str | None = None) -> Callable:
    def convert(value: str):
        try:
            return parse(value)
        except flags.UsageError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    convert.__name__ = name or parse.__name__
    return convert


def _bool_flag(group, *names: str, help: str) -> None:
    """A urfave/cli boolean: `--force`, `--force=true`, `--force=false`."""
    group.add_argument(*names, nargs="?", const=True, default=False, type=_typed(flags.parse_bool, "bool"),
                       metavar="BOOL", help=help)


# -- flag groups (VIC's TargetFlags, IDFlags, ComputeFlags, DebugFlags) --------------------------------------------
def _target_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target")
    group.add_argument("--target", "-t", metavar="URL",
                       help="ESXi or vCenter connection URL, specifying a datacenter if multiple exist, e.g. "
                            "https://vc.example.com/sdk, vc.example.com/dc1 or user:password@host (env "
                            "VIC_MACHINE_TARGET or VSPHERE_URL)")
    group.add_argument("--user", "-u", help="ESX or vCenter user (env VIC_MACHINE_USER or VSPHERE_USER)")
    group.add_argument("--password", "-p", help="ESX or vCenter password (env VIC_MACHINE_PASSWORD or "
                                                "VSPHERE_PASSWORD; prompted for on a terminal)")
    group.add_argument("--thumbprint", help="ESX or vCenter host certificate thumbprint (env VIC_MACHINE_THUMBPRINT)")
    _bool_flag(group, "--insecure", help="do not verify the target's certificate at all (env VSPHERE_INSECURE=1)")


def _id_flags(parser: argparse.ArgumentParser, *, with_id: bool = True) -> None:
    group = parser.add_argument_group("VCH")
    group.add_argument("--name", "-n", default=flags.DEFAULT_NAME,
                       help="the name of the Virtual Container Host (default %(default)s)")
    if with_id:
        group.add_argument("--id", help="the ID of the Virtual Container Host, as `vic-machine ls` shows it "
                                        "(e.g. vm-42)")


def _compute_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compute-resource", "-r", metavar="PATH",
                        help="compute resource path, e.g. myCluster or myCluster/myPool")


def _common_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--timeout", type=_typed(flags.parse_duration, "duration"), default=DEFAULT_TIMEOUT,
                        metavar="DURATION",
                        help=f"time to wait for {what}: a Go duration like 3m0s, or seconds (default %(default)s)")
    parser.add_argument("--debug", "-v", type=int, nargs="?", const=1, default=0, metavar="LEVEL",
                        help="debug level: show vic_ref's own log (default 0)")


def _create_flags(parser: argparse.ArgumentParser) -> None:
    _target_flags(parser)
    _id_flags(parser, with_id=False)
    _compute_flags(parser)
    storage = parser.add_argument_group("storage")
    storage.add_argument("--image-store", "-i", metavar="DATASTORE[/PATH]",
                         help='image datastore path in format "datastore/path" (default: the only datastore)')
    storage.add_argument("--volume-store", "-vs", action="append", default=[], metavar="DATASTORE/PATH:LABEL",
                         type=_typed(flags.volume_store, "volume store"),
                         help='a volume store, e.g. "datastore/path:label" or "datastore:default"; repeatable')
    network = parser.add_argument_group("network and containers")
    network.add_argument("--bridge-network-range", "-bnr", default=vchconfig.DEFAULT_BRIDGE_RANGE,
                         type=_typed(flags.check_network, "network"), metavar="CIDR",
                         help="the IP range from which bridge networks are allocated (default %(default)s)")
    network.add_argument("--container-name-convention", "-cnc", default=None, metavar="CONVENTION",
                         type=_typed(flags.check_name_convention, "convention"),
                         help="container VM names: a pattern with {name} or {id}, e.g. 'web-{name}' "
                              "(default {name}-{id})")
    network.add_argument("--docker-port", type=_typed(flags.check_port, "port"), metavar="PORT",
                         help="the Docker API port on 127.0.0.1 (default: a free port; vic-ref runs VCHs on "
                              "loopback)")
    tls = parser.add_argument_group("TLS (default: TLS with client certificates generated into ./<name>/)")
    tls.add_argument("--tls-cert-path", "--cert-path", dest="cert_path", metavar="DIR",
                     help="where to load certificates from and save generated ones (default ./<name>/)")
    tls.add_argument("--tls-ca", "--tls-cacert", "--ca", dest="tls_ca", action="append", default=[],
                     metavar="FILE", help="a CA whose client certificates the VCH accepts; repeatable")
    tls.add_argument("--tls-server-cert", metavar="FILE", help="the VCH's certificate (with --tls-server-key)")
    tls.add_argument("--tls-server-key", metavar="FILE", help="the VCH's private key")
    tls.add_argument("--tls-cname", metavar="NAME", help="Common Name (and SAN) of a generated server certificate")
    _bool_flag(tls, "--no-tlsverify", "-kv",
               help="disable authentication via client certificates (server TLS only)")
    _bool_flag(tls, "--no-tls", "-k", help="disable TLS support completely (plain HTTP)")
    ignored = parser.add_argument_group("VIC flags accepted and ignored (vic-ref builds its own images and runs "
                                        "VCHs on loopback networks)")
    for names in IGNORED_CREATE_FLAGS:
        ignored.add_argument(*names, dest=f"ignored_{names[0].lstrip('-').replace('-', '_')}", action="append",
                             default=[], metavar="VALUE", help=argparse.SUPPRESS)
    from ..migration import RELEASES
    network.add_argument("--appliance-version", choices=sorted(RELEASES), default=None, metavar="VERSION",
                         help=f"deploy an appliance of this release (one of {', '.join(sorted(RELEASES))}; "
                              f"default: this installer's); an older one is upgraded with vic-machine upgrade")
    util = parser.add_argument_group("behaviour")
    _bool_flag(util, "--force", "-f", help="ignore errors that can be ignored (an unverified target certificate, "
                                           "unreadable existing certificates) and proceed")
    _common_flags(util, "create")


IGNORED_CREATE_FLAGS = [
    ("--appliance-iso", "-ai"), ("--bootstrap-iso", "-bi"), ("--bridge-network", "-b"),
    ("--public-network", "-pn"), ("--client-network", "-cln"), ("--management-network", "-mn"),
    ("--container-network", "-cn"), ("--insecure-registry", "-dir"), ("--whitelist-registry", "-wr"),
    ("--endpoint-cpu",), ("--endpoint-memory",), ("--base-image-size",),
]


def _delete_flags(parser: argparse.ArgumentParser) -> None:
    _target_flags(parser)
    _id_flags(parser)
    _compute_flags(parser)
    util = parser.add_argument_group("behaviour")
    _bool_flag(util, "--force", "-f", help="delete even with powered-on containers (they are powered off), remove "
                                           "the volume stores too, delete a VCH of another version")
    _common_flags(util, "delete")


def _inspect_flags(parser: argparse.ArgumentParser) -> None:
    _target_flags(parser)
    _id_flags(parser)
    _compute_flags(parser)
    parser.add_argument("--tls-cert-path", "--cert-path", dest="cert_path", metavar="DIR",
                        help="where to look for client certificates (default ./<name>/, ., ~/.docker)")
    _bool_flag(parser, "--force", "-f", help="accept an unverified target certificate")
    _common_flags(parser, "inspect")


def _ls_flags(parser: argparse.ArgumentParser) -> None:
    _target_flags(parser)
    _compute_flags(parser)
    _bool_flag(parser, "--force", "-f", help="accept an unverified target certificate")
    _common_flags(parser, "list")


def _upgrade_flags(parser: argparse.ArgumentParser, *, rollback_flag: bool = True) -> None:
    _target_flags(parser)
    _id_flags(parser)
    _compute_flags(parser)
    util = parser.add_argument_group("behaviour")
    _bool_flag(util, "--force", "-f", help="upgrade even a VCH of the same or a newer version; accept an unverified "
                                           "target certificate")
    _bool_flag(util, "--reset-progress", help="reset the UpdateInProgress flag (when no other upgrade/configure "
                                              "runs) and exit")
    if rollback_flag:
        _bool_flag(util, "--rollback", help="roll back to the version before the last upgrade")
    _common_flags(util, "the upgraded VCH to answer (the VCH is rolled back when it runs out)")


def _rollback_flags(parser: argparse.ArgumentParser) -> None:
    _upgrade_flags(parser, rollback_flag=False)


def _configure_flags(parser: argparse.ArgumentParser) -> None:
    _target_flags(parser)
    _id_flags(parser)
    _compute_flags(parser)
    parser.add_argument("--volume-store", "-vs", action="append", default=[], metavar="DATASTORE/PATH:LABEL",
                        type=_typed(flags.volume_store, "volume store"),
                        help="add a volume store, e.g. \"datastore/path:label\"; repeatable (existing ones are kept)")
    util = parser.add_argument_group("behaviour")
    _bool_flag(util, "--force", "-f", help="configure a VCH of another version; accept an unverified target "
                                           "certificate")
    _bool_flag(util, "--reset-progress", help="reset the UpdateInProgress flag (when no other upgrade/configure "
                                              "runs) and exit")
    _common_flags(util, "the reconfigured VCH to answer (it is rolled back when it runs out)")


# -- the target from flags and environment -------------------------------------------------------------------------
def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def connection(args: argparse.Namespace) -> commands.Connection:
    """`--target`/`--user`/`--password`, then VIC_MACHINE_*, then VSPHERE_* (as VIC, the flags win)."""
    raw = args.target or _env("VIC_MACHINE_TARGET", "VSPHERE_URL")
    if not raw:
        raise flags.UsageError("--target argument must be specified (or VSPHERE_URL)")
    target = flags.parse_target(raw)
    user = args.user or target.user or _env("VIC_MACHINE_USER", "VSPHERE_USER")
    if not user:
        raise flags.UsageError("vSphere user must be specified, either with --user or as part of --target")
    password = args.password if args.password is not None else target.password
    if password is None:
        password = os.environ.get("VIC_MACHINE_PASSWORD", os.environ.get("VSPHERE_PASSWORD"))
    if password is None:
        if not sys.stdin.isatty():
            raise flags.UsageError(f"vSphere password for {user} must be specified with --password (or "
                                   f"VSPHERE_PASSWORD)")
        password = getpass.getpass(f"vSphere password for {user}: ")
    insecure = bool(args.insecure) or os.environ.get("VSPHERE_INSECURE", "") in ("1", "true", "yes")
    return commands.Connection(target=target, user=user, password=password,
                               thumbprint=args.thumbprint or _env("VIC_MACHINE_THUMBPRINT"), insecure=insecure)


# -- commands ------------------------------------------------------------------------------------------------------
def _run_create(args: argparse.Namespace, out: Output, op: Operation) -> int:
    for names in IGNORED_CREATE_FLAGS:
        if getattr(args, f"ignored_{names[0].lstrip('-').replace('-', '_')}"):
            out.warn(f"Ignoring {names[0]}: vic-ref builds its own appliance images and runs VCHs on loopback "
                     f"networks")
    if args.no_tls and (args.tls_ca or args.no_tlsverify):
        raise flags.UsageError("--no-tls disables TLS completely: it can't be combined with --tls-ca or "
                               "--no-tlsverify")
    opts = commands.CreateOptions(
        name=args.name, compute_resource=args.compute_resource, image_store=args.image_store,
        volume_stores=dict(args.volume_store), bridge_range=args.bridge_network_range,
        name_convention=args.container_name_convention or "", docker_port=args.docker_port, no_tls=bool(args.no_tls),
        no_tlsverify=bool(args.no_tlsverify), tls_ca=list(args.tls_ca), cert_path=args.cert_path,
        server_cert=args.tls_server_cert, server_key=args.tls_server_key, cname=args.tls_cname,
        timeout=args.timeout, force=bool(args.force), debug=args.debug, appliance_version=args.appliance_version)
    commands.create(op, out, connection(args), opts)
    return 0


def _run_delete(args: argparse.Namespace, out: Output, op: Operation) -> int:
    commands.delete(op, out, connection(args), name=args.name, vch_id=args.id, force=bool(args.force),
                    timeout=args.timeout)
    return 0


def _run_inspect(args: argparse.Namespace, out: Output, op: Operation) -> int:
    commands.inspect(op, out, connection(args), name=args.name, vch_id=args.id, cert_path=args.cert_path,
                     force=bool(args.force))
    return 0


def _run_ls(args: argparse.Namespace, out: Output, op: Operation) -> int:
    commands.list_vchs(op, out, connection(args), compute_resource=args.compute_resource, force=bool(args.force))
    return 0


def _run_upgrade(args: argparse.Namespace, out: Output, op: Operation) -> int:
    upgrades.upgrade(op, out, connection(args), name=args.name, vch_id=args.id, force=bool(args.force),
                     timeout=args.timeout, reset=bool(args.reset_progress), rollback=bool(args.rollback))
    return 0


def _run_rollback(args: argparse.Namespace, out: Output, op: Operation) -> int:
    upgrades.roll_back(op, out, connection(args), name=args.name, vch_id=args.id, force=bool(args.force),
                       timeout=args.timeout, reset=bool(args.reset_progress))
    return 0


def _run_configure(args: argparse.Namespace, out: Output, op: Operation) -> int:
    upgrades.configure(op, out, connection(args), name=args.name, vch_id=args.id,
                       volume_stores=dict(args.volume_store), force=bool(args.force), timeout=args.timeout,
                       reset=bool(args.reset_progress))
    return 0


def _run_version(args: argparse.Namespace, out: Output, op: Operation) -> int:
    out.plain(commands.version_line(PROG))
    return 0


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_flags: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Output, Operation], int]
    # whether --timeout bounds the whole command; upgrade/configure apply it to the new appliance's boot only
    # (a rollback after it ran out must still run)
    op_timeout: bool = True


COMMANDS: list[Command] = [
    Command("create", "Deploy VCH", _create_flags, _run_create),
    Command("delete", "Delete VCH and associated resources", _delete_flags, _run_delete),
    Command("ls", "List VCHs", _ls_flags, _run_ls),
    Command("inspect", "Inspect VCH", _inspect_flags, _run_inspect),
    Command("upgrade", "Upgrade VCH to latest version", _upgrade_flags, _run_upgrade, op_timeout=False),
    Command("rollback", "Roll back VCH to the version before its last upgrade (upgrade --rollback)",
            _rollback_flags, _run_rollback, op_timeout=False),
    Command("configure", "Reconfigure VCH", _configure_flags, _run_configure, op_timeout=False),
    Command("version", "Show VIC version information", lambda parser: None, _run_version),
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Create and manage Virtual Container Hosts", allow_abbrev=False,
                     epilog="The target may also come from VSPHERE_URL, VSPHERE_USER and VSPHERE_PASSWORD. "
                            f"Run '{PROG} COMMAND --help' for a command's flags.")
    parser.add_argument("--version", action="version", version=commands.version_line(PROG))
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", parser_class=_Parser)
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help, allow_abbrev=False)
        command.add_flags(child)
        child.set_defaults(_command=command)
    return parser


# -- main ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "_command", None)
    if command is None:
        parser.print_help()
        return 0
    out = Output(debug=getattr(args, "debug", 0) or 0)
    restore_logs = route_logs(out)
    op = Operation.new(f"{PROG} {command.name}", timeout=getattr(args, "timeout", None) if command.op_timeout
                       else None)
    try:
        return command.run(args, out, op)
    except commands.MachineError as err:
        out.end_step(ok=False)
        for hint in err.hints:
            out.info(hint)
        if err.details:
            out.debug(err.details)
        return _fail(out, command, err.message)
    except (flags.UsageError, certs.CertificateError) as err:
        return _fail(out, command, str(err))
    except errors.Timeout as err:
        out.debug(str(err))
        return _fail(out, command, f"{command.name.capitalize()} timed out: use --timeout to add more time")
    except errors.VicError as err:
        out.debug(str(err))
        return _fail(out, command, commands._line(err))
    except KeyboardInterrupt:
        return _fail(out, command, "interrupted", code=130)
    finally:
        out.close()
        restore_logs()


def _fail(out: Output, command: Command, message: str, code: int = 1) -> int:
    out.end_step(ok=False)
    if not out.tty:
        out.error("--------------------")
    out.error(f"{PROG} {command.name} failed: {message}")
    return code


if __name__ == "__main__":
    sys.exit(main())
