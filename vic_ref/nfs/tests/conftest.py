import pytest

from vic_ref.testing.nfs_server import served_export


@pytest.fixture(scope="package")
def nfs_server(tmp_path_factory):
    # Package scope, not the plugin's session scope: only one ganesha can own port 2049, and later suites
    # (conformance) start their own.
    yield from served_export(tmp_path_factory)
