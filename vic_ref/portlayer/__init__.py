"""The port layer (VIC's `lib/portlayer`): containers (`exec`), images (`storage`), attach and logs (`interaction`),
names and events of one VCH.

    portlayer = PortLayer(op, session, vch_config, guest_channel)
    portlayer.start(op)      # rebuild the caches from vSphere and keep watching (idempotent)
    ...
    portlayer.close(op)

A `PortLayer` owns everything it uses (no module state), so several can run side by side in one process. It keeps no
state of its own beyond caches: `start` rebuilds them from vSphere, so a restarted VCH knows every container.
The image store comes from `vic_ref.portlayer.storage` (`ImageStore(op, session, vch_config, guest_channel)`), imported
when the port layer is built; without that package there are no images (creating a container then fails).

Imports stay inside methods so that importing a subpackage (`vic_ref.portlayer.storage`) stays cheap.
"""
from __future__ import annotations

import threading
import time
from typing import Any

from ..config.vch import VCHConfig
from ..trace import Operation


class PortLayer:
    def __init__(self, op: Operation, session, vch_config: VCHConfig, guest_channel=None, *,
                 storage: Any = None):
        from .events import EventBus
        from .exec import Exec
        from .names import NameTable

        self.session = session
        self.config = vch_config
        self.guest_channel = guest_channel
        self.names = NameTable()
        self.events = EventBus()
        self.storage = storage if storage is not None else self._make_storage(op)
        self.volumes = self._make_volumes(op)
        self.exec = Exec(session, vch_config, self.names, self.events, self.storage)
        from .network import Network
        self.network = Network(session, vch_config, self.exec, self.events)
        from .interaction import Interaction
        # asyncio-native: started by whoever serves the Docker API, on its event loop (`await interaction.start()`)
        self.interaction = Interaction(self.exec, docker_port=vch_config.docker.port)
        self._started = False
        self._start_lock = threading.Lock()
        # the image store asks which containers use an image (rmi's conflicts) and tells of pulls, tags, deletes
        if hasattr(self.storage, "set_usage"):
            self.storage.set_usage(self._image_usage)
        if hasattr(self.storage, "set_event_listener"):
            self.storage.set_event_listener(self._image_event)
        if self.volumes is not None:
            self.volumes.set_usage(self._volume_usage)

    def _image_usage(self, op: Operation, image_id: str) -> list:
        from .storage import ContainerUse
        return [ContainerUse(info.id, info.running) for info in self.exec.list() if info.image_id == image_id]

    def _image_event(self, op: Operation, action: str, ident: str, attributes: dict) -> None:
        self.events.image(op, action, ident, **(attributes or {}))

    def _volume_usage(self, op: Operation, name: str) -> list[str]:
        """IDs of the containers whose executor config mounts the volume (VIC's volume-in-use rule)."""
        return [info.id for info in self.exec.list() if name in info.config.mounts]

    def _make_volumes(self, op: Operation):
        """The volume stores (`storage/volumes.py`), sharing the image store's appliance disks."""
        from .storage.volumes import VolumeStores
        return VolumeStores(op, self.session, self.config, self.guest_channel,
                            disks=getattr(self.storage, "disks", None))

    def _make_storage(self, op: Operation):
        try:
            from .storage import ImageStore
        except ModuleNotFoundError as err:
            if (err.name or "").startswith("vic_ref.portlayer.storage"):
                op.warning("no image store (vic_ref.portlayer.storage is missing): containers can't be created")
                return None
            raise
        except ImportError as err:
            op.warning("no image store (%s): containers can't be created", err)
            return None
        return ImageStore(op, self.session, self.config, self.guest_channel)

    @property
    def started(self) -> bool:
        return self._started

    def start(self, op: Operation) -> None:
        """Rebuild the caches from vSphere (images, then containers and their names) and watch for changes."""
        with self._start_lock:
            if self._started:
                return
            start = getattr(self.storage, "start", None)
            if callable(start):
                start(op)
            if self.volumes is not None:
                self.volumes.start(op)
            self.exec.open(op)
            self.network.start(op)  # after exec: endpoints come from the containers
            self._started = True
            op.info("port layer started: %d containers, %d names", len(self.exec), len(self.names))

    def close(self, op: Operation) -> None:
        began = time.monotonic()
        with self._start_lock:
            self.network.close(op)
            self.exec.close(op)
            close = getattr(self.storage, "close", None)
            if callable(close):
                try:
                    close(op)
                except Exception as err:  # noqa: BLE001 - closing goes on
                    op.warning("closing the image store: %s", err)
            self._started = False
        op.info("port layer closed in %.2fs", time.monotonic() - began)

    def __repr__(self) -> str:
        return f"<PortLayer {self.config.name} containers={len(self.exec)}>"


__all__ = ["PortLayer"]
