"""vic-machine's command line without vSphere: usage, flags as VIC takes them, the target from the environment, the
plain output format, and the Docker connection hints it prints."""
from __future__ import annotations

import io
import re

import pytest

from vic_ref.config import vch as vchconfig
from vic_ref.machine import certs, cli, commands, flags
from vic_ref.machine.output import Output


def test_usage_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("create", "delete", "inspect", "ls", "version"):
        assert re.search(rf"^\s+{command}\s+\S", out, re.M), f"{command} missing from usage:\n{out}"


def test_version(capsys):
    assert cli.main(["version"]) == 0
    assert re.fullmatch(r"vic-machine version \d+\.\d+\.\d+-0-\S+\n", capsys.readouterr().out)


def test_a_bad_flag_is_exit_1_with_a_one_line_reason(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["create", "--timeout", "soon"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "vic-machine create: error: argument --timeout: invalid duration 'soon'" in err


def test_create_flags_as_vic_spells_them():
    args = cli.build_parser().parse_args([
        "create", "-t", "h", "--name=vch1", "-vs", "ds/a:default", "--volume-store", "ds:b", "--force=true",
        "--no-tlsverify=false", "--timeout", "3m0s", "--debug", "1", "-bnr", "172.16.0.0/12",
        "--tls-cacert", "a.pem", "--tls-ca", "b.pem", "--appliance-iso", "bin/appliance.iso"])
    assert args.name == "vch1" and args.force is True and args.no_tlsverify is False
    assert dict(args.volume_store) == {"default": "[ds] a", "b": "[ds]"}
    assert args.timeout == 180.0 and args.debug == 1 and args.bridge_network_range == "172.16.0.0/12"
    assert args.tls_ca == ["a.pem", "b.pem"] and args.ignored_appliance_iso == ["bin/appliance.iso"]
    defaults = cli.build_parser().parse_args(["delete"])
    assert defaults.name == flags.DEFAULT_NAME == "virtual-container-host"
    assert defaults.force is False and defaults.timeout == 180.0


def namespace(**kwargs):
    base = dict(target=None, user=None, password=None, thumbprint=None, insecure=False)
    base.update(kwargs)
    return type("Args", (), base)()


def test_connection_flags_win_over_vic_machine_env_over_vsphere_env(monkeypatch):
    for name in ("VIC_MACHINE_TARGET", "VIC_MACHINE_USER", "VIC_MACHINE_PASSWORD", "VIC_MACHINE_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VSPHERE_URL", "http://127.0.0.1:1/sdk")
    monkeypatch.setenv("VSPHERE_USER", "env-user")
    monkeypatch.setenv("VSPHERE_PASSWORD", "env-pass")
    monkeypatch.setenv("VSPHERE_INSECURE", "1")
    conn = cli.connection(namespace())
    assert (conn.target.sdk_url, conn.user, conn.password, conn.insecure) == \
        ("http://127.0.0.1:1/sdk", "env-user", "env-pass", True)
    monkeypatch.setenv("VIC_MACHINE_TARGET", "vc.example.com/dc1")
    monkeypatch.setenv("VIC_MACHINE_USER", "vic-user")
    conn = cli.connection(namespace())
    assert (conn.target.sdk_url, conn.target.datacenter, conn.user) == \
        ("https://vc.example.com/sdk", "dc1", "vic-user")
    conn = cli.connection(namespace(target="u:p@other/dc2", password="flag-pass"))
    assert (conn.target.host, conn.user, conn.password) == ("other", "u", "flag-pass")  # --password beats the URL's
    conn = cli.connection(namespace(target="u:url-pass@other", user="flag-user"))
    assert (conn.user, conn.password) == ("flag-user", "url-pass")


def test_connection_errors(monkeypatch):
    for name in ("VIC_MACHINE_TARGET", "VSPHERE_URL", "VIC_MACHINE_USER", "VSPHERE_USER", "VIC_MACHINE_PASSWORD",
                 "VSPHERE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(flags.UsageError, match="--target argument must be specified"):
        cli.connection(namespace())
    with pytest.raises(flags.UsageError, match="vSphere user must be specified"):
        cli.connection(namespace(target="host"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: no prompt
    with pytest.raises(flags.UsageError, match="vSphere password for root must be specified"):
        cli.connection(namespace(target="host", user="root"))


def test_plain_output_is_vics_log_format():
    stdout, stderr = io.StringIO(), io.StringIO()
    out = Output(tty=False, stdout=stdout, stderr=stderr)
    out.info("### Installing VCH ####")
    out.step("Creating appliance on target")
    out.warn("careful\nreally")
    out.debug("hidden without --debug")
    out.error("it broke")
    out.table(["ID", "NAME"], [["vm-1", "vch1"]])
    lines = stdout.getvalue().splitlines()
    assert lines[:4] == ["INFO[0000] ### Installing VCH ####", "INFO[0000] Creating appliance on target",
                         "WARN[0000] careful", "WARN[0000] really"]
    assert lines[4:] == ["", "ID" + " " * 10 + "NAME", "vm-1" + " " * 8 + "vch1"]
    assert stderr.getvalue() == "ERRO[0000] it broke\n"


def test_terminal_output_shows_steps_done(tmp_path):
    stdout = io.StringIO()
    out = Output(tty=True, stdout=stdout, stderr=io.StringIO())
    out.step("Uploading images for container")
    out.step("Creating appliance on target")
    out.end_step(ok=False)
    text = stdout.getvalue()
    assert "✓ Uploading images for container" in text and "✗ Creating appliance on target" in text


def vch_config(**kwargs) -> vchconfig.VCHConfig:
    return vchconfig.new_config("vch1", "http://127.0.0.1:1/sdk", "u", "p", image_store="[ds]", port=40000, **kwargs)


def test_docker_hints_with_generated_client_certificates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    setup = certs.prepare("vch1")
    config = vch_config(host_cert=setup.host_cert, host_key=setup.host_key, ca_certs=setup.ca_certs)
    command, env = commands.docker_command(config, tls_setup=setup, cert_path=setup.cert_path)
    assert command == ('docker -H 127.0.0.1:40000 --tlsverify --tlscacert="vch1/ca.pem" --tlscert="vch1/cert.pem" '
                       '--tlskey="vch1/key.pem" info')
    assert env == (f"DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH={tmp_path / 'vch1'} DOCKER_HOST=127.0.0.1:40000 "
                   f"COMPOSE_TLS_VERSION=TLSv1_2")


def test_docker_hints_without_client_certificates_or_tls():
    noverify = vch_config(host_cert=b"x", host_key=b"y")
    assert commands.docker_command(noverify) == ("docker -H 127.0.0.1:40000 --tls info",
                                                 "DOCKER_HOST=127.0.0.1:40000 COMPOSE_TLS_VERSION=TLSv1_2")
    verify = vch_config(host_cert=b"x", host_key=b"y", ca_certs=b"z")
    assert commands.docker_command(verify)[0] == "docker -H 127.0.0.1:40000 --tlsverify info"
    plain = vch_config()
    assert commands.docker_command(plain) == ("docker -H 127.0.0.1:40000 info",
                                              "DOCKER_HOST=127.0.0.1:40000 COMPOSE_TLS_VERSION=TLSv1_2")


def test_thumbprint_format():
    assert commands.sha1_thumbprint(b"abc") == "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
