"""NFS volume stores without a kernel NFS client: libnfs through ctypes (`libnfs`), and FUSE mounts of NFS
directories for containers (`fuse_mount`)."""
