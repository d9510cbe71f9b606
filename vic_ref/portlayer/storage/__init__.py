"""Port layer storage: the image store (image layers as disk chains on the datastore) and the volume stores.

`ImageStore(op, session, vch_config, guest_channel, usage=..., on_event=...)` rebuilds itself from the datastore;
see `image.py` for the layout and the API the exec and personality layers call. Volumes (independent disks holding
an ext4 filesystem, found again at start) are `volumes.VolumeStores`, imported from there.
"""
from .image import SCRATCH, ContainerUse, Image, ImageConflict, ImageNotFound, ImageStore, Layer

__all__ = ["ImageStore", "Image", "Layer", "ContainerUse", "ImageNotFound", "ImageConflict", "SCRATCH"]
