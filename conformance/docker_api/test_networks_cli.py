"""Networking with the real docker CLI: each container gets its own loopback address, the VCH's name server (on each
network's first address) resolves names, short IDs, aliases and links, `docker network` commands answer with Docker's
texts, addresses survive a VCH restart, and two VCHs serve DNS side by side on their own ranges."""
from __future__ import annotations

import ipaddress
import json
import os
import signal

import pytest

from .conftest import find_vms, ok, wait_for

PINGED = "2 packets transmitted, 2 packets received"


def ip_of(docker_cli, name: str, network: str = "bridge") -> str:
    return ok(docker_cli("inspect", "-f", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}",
                         name)).strip()


def gateway_of(docker_cli, network: str = "bridge") -> str:
    return ok(docker_cli("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network)).strip()


def dns_query(server: str, name: str, tcp: bool = False) -> list[str]:
    from dnslib import DNSRecord
    reply = DNSRecord.parse(DNSRecord.question(name).send(server, 53, tcp=tcp, timeout=3))
    return [str(rr.rdata) for rr in reply.rr]


def test_names_resolve_through_the_name_server(docker_cli, busybox):
    cid = ok(docker_cli("run", "-d", "--name", "cont7-name2", busybox, "sleep", "600", timeout=120)).strip()
    ip = ip_of(docker_cli, "cont7-name2")
    gateway = gateway_of(docker_cli)
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(ok(docker_cli(
        "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge")).strip())
    assert ip != gateway

    out = ok(docker_cli("run", "--rm", busybox, "ping", "-c2", "cont7-name2", timeout=120))
    assert PINGED in out and f"({ip})" in out or ip in out, out
    out = ok(docker_cli("run", "--rm", "--link", "cont7-name2:cont7alias", busybox, "ping", "-c2", "cont7alias",
                        timeout=120))
    assert PINGED in out and ip in out, out
    out = ok(docker_cli("run", "--rm", busybox, "nslookup", "cont7-name2", timeout=120))
    assert f"Server:\t\t{gateway}" in out and f"Address: {ip}" in out, out
    # the short ID resolves too, over TCP as well; a link alias only for the container that declared it
    assert dns_query(gateway, cid[:12]) == [ip]
    assert dns_query(gateway, "cont7-name2", tcp=True) == [ip]
    rc, out, _ = docker_cli("run", "--rm", busybox, "nslookup", "cont7alias", timeout=120)
    assert rc == 1 and "NXDOMAIN" in out, out

    # what the container sees: resolv.conf names the name server; hosts has no container name (DESIGN §3)
    out = ok(docker_cli("run", "--rm", "--name", "look", busybox, "sh", "-c",
                        "cat /etc/resolv.conf; echo ---; cat /etc/hosts", timeout=120))
    resolv, hosts = out.split("---\n")
    assert resolv.strip() == f"nameserver {gateway}"
    assert "127.0.0.1\tlocalhost" in hosts and "\tbridge.localhost" in hosts and "look" not in hosts, hosts

    # rename: the new name resolves at once, the old one no more
    ok(docker_cli("rename", "cont7-name2", "cont7-renamed"))
    assert dns_query(gateway, "cont7-renamed") == [ip]
    assert dns_query(gateway, "cont7-name2") == []
    out = ok(docker_cli("run", "--rm", busybox, "ping", "-c2", "cont7-renamed", timeout=120))
    assert PINGED in out
    rc, out, _ = docker_cli("run", "--rm", busybox, "nslookup", "cont7-name2", timeout=120)
    assert rc == 1 and "NXDOMAIN" in out, out
    # a link to the renamed container keeps working under its alias; HostConfig.Links shows the new name
    ok(docker_cli("create", "--name", "linker", "--link", "cont7-renamed:db", busybox, "ping", "-c2", "db"))
    assert json.loads(ok(docker_cli("inspect", "-f", "{{json .HostConfig.Links}}", "linker"))) == \
        ["/cont7-renamed:/linker/db"]
    out = ok(docker_cli("start", "-a", "linker", timeout=120))
    assert PINGED in out
    ok(docker_cli("rm", "-f", "cont7-renamed", "linker"))
    assert dns_query(gateway, "cont7-renamed") == []


def test_link_to_a_missing_container(docker_cli, busybox):
    rc, _, err = docker_cli("create", "--link", "nosuch:x", busybox)
    assert rc != 0 and "could not get container for nosuch" in err, err


def test_network_commands(docker_cli, busybox):
    net_id = ok(docker_cli("network", "create", "net1")).strip()
    assert len(net_id) == 64
    rc, _, err = docker_cli("network", "create", "net1")
    assert rc == 1 and "Error response from daemon: network with name net1 already exists" in err, err
    listing = ok(docker_cli("network", "ls")).splitlines()
    assert listing[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    rows = {line.split()[1]: line.split() for line in listing[1:]}
    assert rows["net1"] == [net_id[:12], "net1", "bridge", "local"] and "bridge" in rows
    info = json.loads(ok(docker_cli("network", "inspect", "net1")))[0]
    assert info["Name"] == "net1" and info["Id"] == net_id and info["Driver"] == "bridge"
    subnet = ipaddress.ip_network(info["IPAM"]["Config"][0]["Subnet"])
    bridge_subnet = ipaddress.ip_network(ok(docker_cli(
        "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", "bridge")).strip())
    assert subnet.prefixlen == 24 and not subnet.overlaps(bridge_subnet) and subnet.subnet_of(
        ipaddress.ip_network("127.0.0.0/8"))

    # run on it with an alias; names resolve on it, from its own name server
    ok(docker_cli("run", "-d", "--name", "web", "--network", "net1", "--network-alias", "www", busybox,
                  "sleep", "600", timeout=120))
    web_ip = ip_of(docker_cli, "web", "net1")
    assert ipaddress.ip_address(web_ip) in subnet
    inspected = json.loads(ok(docker_cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "web")))
    assert set(inspected) == {"net1"}
    assert "www" in inspected["net1"]["Aliases"] and inspected["net1"]["Gateway"] == info["IPAM"]["Config"][0][
        "Gateway"]
    out = ok(docker_cli("run", "--rm", "--network", "net1", busybox, "ping", "-c2", "www", timeout=120))
    assert PINGED in out and web_ip in out
    rc, out, _ = docker_cli("run", "--rm", busybox, "nslookup", "www", timeout=120)  # not on bridge
    assert rc == 1, out
    rc, _, err = docker_cli("run", "--rm", "--network-alias", "x", busybox, "true")
    assert rc != 0 and "network-scoped alias" in err, err  # the CLI refuses it itself

    # connect and disconnect
    ok(docker_cli("create", "--name", "other", busybox, "sleep", "600"))
    ok(docker_cli("network", "connect", "--alias", "oth", "net1", "other"))
    nets = json.loads(ok(docker_cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", "other")))
    assert set(nets) == {"bridge", "net1"} and ipaddress.ip_address(nets["net1"]["IPAddress"]) in subnet
    members = json.loads(ok(docker_cli("network", "inspect", "-f", "{{json .Containers}}", "net1")))
    assert {m["Name"] for m in members.values()} == {"web", "other"}
    rc, _, err = docker_cli("network", "connect", "net1", "other")
    assert rc == 1 and "already exists in network net1" in err, err
    ok(docker_cli("start", "other", timeout=120))
    out = ok(docker_cli("exec", "other", "ping", "-c2", "web", timeout=60))
    assert PINGED in out
    rc, _, err = docker_cli("network", "rm", "net1")
    assert rc == 1 and "has active endpoints" in err, err
    ok(docker_cli("network", "disconnect", "net1", "other"))
    rc, _, err = docker_cli("network", "disconnect", "net1", "other")
    assert rc == 1 and "is not connected to network net1" in err, err

    # errors and removal
    rc, _, err = docker_cli("network", "inspect", "nosuch")
    assert rc == 1 and "network nosuch not found" in err, err
    rc, _, err = docker_cli("run", "--rm", "--network", "nosuch", busybox, "true")
    assert rc != 0 and "network nosuch not found" in err, err
    rc, _, err = docker_cli("network", "rm", "bridge")
    assert rc == 1 and "bridge is a pre-defined network and cannot be removed" in err, err
    ok(docker_cli("rm", "-f", "web", "other"))
    assert ok(docker_cli("network", "rm", "net1")) == "net1\n"
    rc, _, err = docker_cli("network", "rm", "net1")
    assert rc == 1 and "Error response from daemon: network net1 not found" in err, err

    # --subnet: loopback only, no overlap
    custom = ok(docker_cli("network", "create", "--subnet", "127.250.7.0/24", "custom")).strip()
    assert json.loads(ok(docker_cli("network", "inspect", custom)))[0]["IPAM"]["Config"][0] == {
        "Subnet": "127.250.7.0/24", "Gateway": "127.250.7.1"}
    assert dns_query("127.250.7.1", "nothing-here") == []
    rc, _, err = docker_cli("network", "create", "--subnet", "127.250.7.128/25", "overlap")
    assert rc == 1 and "Pool overlaps with other one on this address space" in err, err
    rc, _, err = docker_cli("network", "create", "--subnet", "10.1.0.0/24", "notloop")
    assert rc == 1 and "not a loopback range" in err, err
    ok(docker_cli("network", "rm", "custom"))


@pytest.mark.sim_only
def test_addresses_survive_a_vch_restart(vch, docker_cli, busybox, si):
    from pyVim.task import WaitForTask

    from .test_vch_restart import appliance_pid

    ok(docker_cli("network", "create", "keep"))
    ok(docker_cli("run", "-d", "--name", "r1", busybox, "sleep", "600", timeout=120))
    ok(docker_cli("create", "--name", "r2", "--network", "keep", busybox, "sleep", "600"))
    before = {n: json.loads(ok(docker_cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", n)))
              for n in ("r1", "r2")}
    keep = ok(docker_cli("network", "inspect", "keep")).strip()
    gateway = gateway_of(docker_cli)

    os.kill(appliance_pid(vch), signal.SIGKILL)
    (appliance,) = find_vms(si, vch.name)
    wait_for(lambda: appliance.runtime.powerState == "poweredOff", 30, "the appliance to power off")
    WaitForTask(appliance.PowerOnVM_Task())
    wait_for(lambda: docker_cli("version", timeout=10)[0] == 0, 120, "the VCH to answer again", every=0.5)

    after = {n: json.loads(ok(docker_cli("inspect", "-f", "{{json .NetworkSettings.Networks}}", n)))
             for n in ("r1", "r2")}
    assert after == before
    assert ok(docker_cli("network", "inspect", "keep")).strip() == keep
    assert wait_for(lambda: dns_query(gateway, "r1"), 10, "the name server") == [before["r1"]["bridge"]["IPAddress"]]
    ok(docker_cli("start", "r2", timeout=120))
    out = ok(docker_cli("run", "--rm", "--network", "keep", busybox, "ping", "-c2", "r2", timeout=120))
    assert PINGED in out and before["r2"]["keep"]["IPAddress"] in out
    ok(docker_cli("rm", "-f", "r1", "r2"))
    ok(docker_cli("network", "rm", "keep"))


def test_two_vchs_serve_dns_side_by_side(vch, docker_cli, busybox, tmp_path):
    from vic_ref.testing.vch import start_vch

    ok(docker_cli("run", "-d", "--name", "side", busybox, "sleep", "600", timeout=120))
    first_gateway = gateway_of(docker_cli)
    with start_vch(tmp_path / "second", name="second") as second:
        ok(second.docker("pull", busybox, timeout=120))
        ok(second.docker("run", "-d", "--name", "side", busybox, "sleep", "600", timeout=120))

        def second_cli(*args, **kwargs):
            return second.docker(*args, **kwargs)

        second_gateway = gateway_of(second_cli)
        assert second_gateway != first_gateway
        first_ip, second_ip = ip_of(docker_cli, "side"), ip_of(second_cli, "side")
        assert first_ip != second_ip
        assert dns_query(first_gateway, "side") == [first_ip]
        assert dns_query(second_gateway, "side") == [second_ip]
        out = ok(second.docker("run", "--rm", busybox, "ping", "-c2", "side", timeout=120))
        assert PINGED in out and second_ip in out
    ok(docker_cli("rm", "-f", "side"))
