"""The test server helper itself: its URL and its refusal to start a second ganesha."""
from __future__ import annotations

import socket

import pytest

from vic_ref.nfs.libnfs import NfsClient
from vic_ref.testing.nfs_server import NfsServer, NfsServerError


def test_url_is_vics_volume_store_form(nfs_server):
    assert nfs_server.url(host="nfs.example.com") == \
        "nfs://nfs.example.com/mnt/nfs-vol?uid=0&gid=0&proto=tcp&port=2049"
    assert nfs_server.url().startswith(f"nfs://{socket.getfqdn()}/mnt/nfs-vol?")
    with NfsClient.connect(nfs_server.url()) as client:
        assert client.export == "/mnt/nfs-vol" and client.server == socket.getfqdn()


def test_a_second_server_on_the_port_fails_clearly(nfs_server, tmp_path):
    with pytest.raises(NfsServerError, match="port 2049 is already served .*ganesha"):
        NfsServer(tmp_path).start()
    assert nfs_server.running
