"""The default inventory, seeded through the sim's own vim25 API as a client would build it (names as vcsim's):

    DC0                              datacenter
      host/DC0_C0                    cluster (DRS, vSAN) with hosts DC0_C0_H0..2, root pool `Resources` and child
                                     pool DC0_C0_RP1
      host/DC0_H0                    standalone host (its compute resource has the same name)
      datastore/LocalDS_0            VMFS, mounted on every host
      datastore/vsanDatastore        vSAN, mounted on the cluster's hosts
      network/VM Network             standard port group on every host
      network/DC0_DVS                distributed switch on every host, with port group DC0_DVPG0
      vm/                            empty
"""
from __future__ import annotations

from pyVmomi import vim

DATACENTER = "DC0"
CLUSTER = "DC0_C0"
CLUSTER_HOSTS = 3
STANDALONE_HOST = "DC0_H0"
CHILD_POOL = "DC0_C0_RP1"
LOCAL_DATASTORE = "LocalDS_0"
VSAN_DATASTORE = "vsanDatastore"
VM_NETWORK = "VM Network"
DVS = "DC0_DVS"
DVPG = "DC0_DVPG0"


def seed_default_inventory(sim) -> None:
    registry = sim.registry
    call, wait = sim.call, sim.wait_task
    root = sim.root_folder()
    dc_ref = call(root.ref, "CreateDatacenter", name=DATACENTER)
    dc = registry.get(dc_ref)
    host_folder = dc.props["hostFolder"]

    cluster_ref = call(host_folder, "CreateClusterEx", name=CLUSTER, spec=vim.cluster.ConfigSpecEx(
        drsConfig=vim.cluster.DrsConfigInfo(enabled=True, defaultVmBehavior="fullyAutomated"),
        dasConfig=vim.cluster.DasConfigInfo(enabled=False),
        vsanConfig=vim.vsan.cluster.ConfigInfo(enabled=True)))
    cluster_hosts = []
    for i in range(CLUSTER_HOSTS):
        host_ref = wait(call(cluster_ref, "AddHost_Task", spec=vim.host.ConnectSpec(
            hostName=f"{CLUSTER}_H{i}", userName="root", password="", force=True), asConnected=True))
        cluster_hosts.append(registry.get(host_ref))
    compute_ref = wait(call(host_folder, "AddStandaloneHost_Task", spec=vim.host.ConnectSpec(
        hostName=STANDALONE_HOST, userName="root", password="", force=True), addConnected=True))
    standalone = registry.get(compute_ref).hosts()[0]
    hosts = cluster_hosts + [standalone]

    cluster = registry.get(cluster_ref)
    call(cluster.props["resourcePool"], "CreateResourcePool", name=CHILD_POOL,
         spec=vim.ResourceConfigSpec(cpuAllocation=vim.ResourceAllocationInfo(), memoryAllocation=
                                     vim.ResourceAllocationInfo()))

    sim.datastores.add_datastore(dc, LOCAL_DATASTORE, "VMFS", hosts)
    sim.datastores.add_datastore(dc, VSAN_DATASTORE, "vsan", cluster_hosts)
    for compute in (cluster, registry.get(compute_ref)):
        _sync_compute_links(compute)

    for host in hosts:
        call(host.props["configManager"].networkSystem, "AddPortGroup", portgrp=vim.host.PortGroup.Specification(
            name=VM_NETWORK, vlanId=0, vswitchName="vSwitch0", policy=vim.host.NetworkPolicy()))
    dvs_ref = wait(call(dc.props["networkFolder"], "CreateDVS_Task", spec=vim.DistributedVirtualSwitch.CreateSpec(
        configSpec=vim.dvs.VmwareDistributedVirtualSwitch.ConfigSpec(
            name=DVS, host=[vim.dvs.HostMember.ConfigSpec(operation="add", host=h.ref) for h in hosts]))))
    wait(call(dvs_ref, "CreateDVPortgroup_Task", spec=vim.dvs.DistributedVirtualPortgroup.ConfigSpec(
        name=DVPG, type="earlyBinding", numPorts=8)))
    for compute in (cluster, registry.get(compute_ref)):
        _sync_compute_links(compute)


def _sync_compute_links(compute) -> None:
    """A compute resource lists the datastores and networks of its hosts."""
    for host in compute.hosts():
        for prop in ("datastore", "network"):
            for ref in host.props.get(prop) or []:
                refs = compute.props.get(prop)
                if all(r._moId != ref._moId for r in refs):
                    refs.append(ref)
                    compute.touch(prop)
