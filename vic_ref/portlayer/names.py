"""The container name table: one table for create and rename, so no two containers ever hold one name.

A name is reserved for a container ID before the container exists in vSphere and released if creating it fails; a
rename reserves the new name before its commit and releases the old one after (or the new one, if the commit fails).
All of it under one lock, so any number of racing requests see each name taken exactly once.

Names are Docker's: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (at least two characters), given with or without Docker's leading
`/`. Random names are made as Docker makes them, `<adjective>_<surname>` (a digit appended from the second try on),
tried 5 times as VIC's persona does before giving up with VIC's text.
"""
from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable

from .. import errors

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
NAME_PATTERN = re.compile(f"^{NAME_CHARS}+$")
RANDOM_NAME_ATTEMPTS = 5  # VIC's persona (backends/container.go ContainerCreate)
RANDOM_NAMES_EXHAUSTED = "attempted random names conflicted with existing containers"


class InvalidName(errors.InvalidArgument):
    """A name Docker would refuse (HTTP 400)."""

    def __init__(self, name: str, **kwargs):
        super().__init__(f"Invalid container name ({name}), only {NAME_CHARS} are allowed", **kwargs)
        self.name = name


class NameConflict(errors.AlreadyExists):
    """The name is held by another container (HTTP 409); `holder` is its ID."""

    def __init__(self, name: str, holder: str, **kwargs):
        super().__init__(f'Conflict. The container name "/{name}" is already in use by container "{holder}". '
                         "You have to remove (or rename) that container to be able to reuse that name.", **kwargs)
        self.name = name
        self.holder = holder


def clean(name: str) -> str:
    """A name as the table keys it: Docker's leading `/` dropped."""
    return name[1:] if name.startswith("/") else name


def validate(name: str) -> str:
    """The name without its leading `/`; InvalidName (with the name as given, as Docker words it) if it is not one."""
    bare = clean(name)
    if not NAME_PATTERN.match(bare):
        raise InvalidName(name)
    return bare


# Word lists for random names: our own, in the spirit of Docker's (an adjective and a scientist's or engineer's
# surname). Every entry must itself be a valid name part: lowercase letters only.
ADJECTIVES = (
    "agile", "amiable", "ardent", "artful", "balmy", "bold", "brave", "breezy", "bright", "brisk", "calm", "candid",
    "careful", "charming", "cheerful", "civil", "clever", "cosmic", "crisp", "curious", "daring", "dazzling",
    "decisive", "deft", "devoted", "diligent", "dreamy", "eager", "earnest", "elated", "elegant", "epic", "fervent",
    "festive", "fearless", "fond", "frank", "friendly", "gallant", "gentle", "gifted", "gleeful", "glowing",
    "graceful", "gracious", "hardy", "hearty", "helpful", "honest", "hopeful", "humble", "jolly", "jovial",
    "joyful", "keen", "kind", "lively", "loyal", "lucid", "lucky", "merry", "mighty", "mindful", "modest", "nifty",
    "nimble", "noble", "patient", "peaceful", "placid", "playful", "plucky", "polite", "proud", "quick", "quiet",
    "radiant", "rapid", "relaxed", "resolute", "serene", "sharp", "shiny", "sincere", "sleek", "smart", "snappy",
    "spirited", "splendid", "steady", "stoic", "sturdy", "sunny", "swift", "tender", "thoughtful", "tidy",
    "tireless", "tranquil", "trusty", "upbeat", "valiant", "vibrant", "vigilant", "vivid", "warm", "wise", "witty",
    "zealous", "zesty",
)

SURNAMES = (
    "agnesi", "alhazen", "ampere", "archimedes", "avogadro", "babbage", "banach", "bardeen", "bernoulli", "bohr",
    "boltzmann", "boole", "born", "bose", "brahe", "cantor", "carnot", "carson", "cauchy", "cavendish", "chandra",
    "clausius", "copernicus", "coulomb", "curie", "darwin", "dedekind", "descartes", "dijkstra", "dirac",
    "doppler", "edison", "ehrenfest", "einstein", "euclid", "euler", "faraday", "fermat", "fermi", "feynman",
    "fibonacci", "fourier", "franklin", "fresnel", "galileo", "galois", "gauss", "germain", "gibbs", "godel",
    "goodall", "hamilton", "hawking", "heisenberg", "helmholtz", "hertz", "hilbert", "hodgkin", "hooke", "hopper",
    "hubble", "huygens", "hypatia", "jacobi", "joule", "kelvin", "kepler", "knuth", "kovalevskaya", "lagrange",
    "lamarr", "laplace", "lavoisier", "leavitt", "leibniz", "lovelace", "lorentz", "maxwell", "meitner", "mendel",
    "mendeleev", "minsky", "mirzakhani", "noether", "newton", "nobel", "ohm", "pascal", "pasteur", "pauli",
    "pauling", "planck", "poincare", "ramanujan", "riemann", "ritchie", "roentgen", "rutherford", "sagan",
    "schrodinger", "shannon", "snell", "somerville", "stokes", "tesla", "thompson", "torvalds", "turing",
    "volta", "wallace", "watt", "wiles", "wu", "yalow", "yonath", "zuse",
)


def random_name(attempt: int, rng: random.Random | None = None) -> str:
    """`<adjective>_<surname>` as Docker makes them; from the second attempt on, a random digit is appended."""
    rng = rng or random
    name = f"{rng.choice(ADJECTIVES)}_{rng.choice(SURNAMES)}"
    if attempt > 0:
        name += str(rng.randrange(10))
    return name


class NameTable:
    """name → container ID, changed only under one lock."""

    def __init__(self, generator: Callable[[int], str] = random_name):
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._generator = generator

    def reserve(self, name: str, container_id: str) -> str:
        """Take `name` for `container_id` (validated; returned without `/`). Taking a name the container already
        holds is a no-op; a name another container holds raises NameConflict."""
        bare = validate(name)
        with self._lock:
            holder = self._names.get(bare)
            if holder is not None and holder != container_id:
                raise NameConflict(bare, holder)
            self._names[bare] = container_id
        return bare

    def reserve_random(self, container_id: str) -> str:
        """A random name reserved for `container_id`; Conflict with VIC's text after 5 taken names."""
        for attempt in range(RANDOM_NAME_ATTEMPTS):
            name = self._generator(attempt)
            with self._lock:
                if name not in self._names:
                    self._names[name] = container_id
                    return name
        raise errors.Conflict(RANDOM_NAMES_EXHAUSTED)

    def release(self, name: str, container_id: str | None = None) -> bool:
        """Free `name`; with `container_id`, only if that container holds it. Whether a name was freed."""
        bare = clean(name)
        with self._lock:
            holder = self._names.get(bare)
            if holder is None or (container_id is not None and holder != container_id):
                return False
            del self._names[bare]
            return True

    def release_all(self, container_id: str) -> list[str]:
        """Free every name `container_id` holds (a removed container, or one that vanished from vSphere)."""
        with self._lock:
            names = [n for n, holder in self._names.items() if holder == container_id]
            for name in names:
                del self._names[name]
        return names

    def holder(self, name: str) -> str | None:
        with self._lock:
            return self._names.get(clean(name))

    def snapshot(self) -> dict[str, str]:
        with self._lock:
            return dict(self._names)

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)

    def __contains__(self, name: str) -> bool:
        return self.holder(name) is not None


__all__ = ["NameTable", "NameConflict", "InvalidName", "validate", "clean", "random_name", "NAME_CHARS",
           "NAME_PATTERN", "RANDOM_NAME_ATTEMPTS", "RANDOM_NAMES_EXHAUSTED"]
