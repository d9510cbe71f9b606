"""Busybox images with `VOLUME` lines, for the volume suites (VIC's Robot tests use images like mongo; these have the
same kind of volumes and content to copy).

- `vol-example`: `VOLUME /etc/example`; /etc/example holds a folder `thisshouldexist` and `testfile.txt` (`TestFile`),
  as VIC's 1-19 image does.
- `vol-mongo`: `VOLUME /data/db /data/configdb` like mongo's image; /data/db (mode 0700) holds `README`.

`push_volume_images(registry, busybox_layer)` pushes both and returns {name: PushedImage}.
"""
from __future__ import annotations

from .registry import CREATED, PATH_ENV, Layer, PushedImage, Registry, make_config, make_layer

TESTFILE = b"TestFile\n"


def example_layer() -> Layer:
    return make_layer([("dir", "etc", 0o755), ("dir", "etc/example", 0o755),
                       ("dir", "etc/example/thisshouldexist", 0o755),
                       ("file", "etc/example/testfile.txt", TESTFILE, 0o644)])


def mongo_layer() -> Layer:
    return make_layer([("dir", "data", 0o755), ("dir", "data/db", 0o700),
                       ("file", "data/db/README", b"mongo data\n", 0o600), ("dir", "data/configdb", 0o755)])


def _push(registry: Registry, busybox: Layer, repo: str, layer: Layer, volumes: list[str]) -> PushedImage:
    layers = [busybox, layer]
    config = make_config(layers, {"Env": [PATH_ENV], "Cmd": ["sh"], "Volumes": {v: {} for v in volumes}}, [
        {"created": CREATED, "created_by": "/bin/sh -c #(nop) ADD file:busybox-static in / "},
        {"created": CREATED, "created_by": f"/bin/sh -c #(nop) COPY dir:{repo} in / "},
        {"created": CREATED, "created_by": f'/bin/sh -c #(nop)  VOLUME {volumes}', "empty_layer": True},
        {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True}])
    return registry.push_image(repo, "latest", layers, config)


def push_volume_images(registry: Registry, busybox: Layer) -> dict[str, PushedImage]:
    return {"vol-example": _push(registry, busybox, "vol-example", example_layer(), ["/etc/example"]),
            "vol-mongo": _push(registry, busybox, "vol-mongo", mongo_layer(), ["/data/db", "/data/configdb"])}


__all__ = ["push_volume_images", "example_layer", "mongo_layer", "TESTFILE"]
