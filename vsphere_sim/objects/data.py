"""Building pyVmomi data objects on the sim's hot paths without pyVmomi's per-field checks.

`vim.vm.RuntimeInfo(**fields)` walks the type's whole property list (base classes included) to set defaults, then
type-checks each given field with `CheckField`: ~40 µs for an object of 20 fields, and creating one VM builds a
hundred.
`make(cls, **fields)` gives the same object (the same defaults, fresh empty arrays, the same `__dict__`) from a
per-type template in a few µs. It skips the checks, so it is for values the sim builds itself from values of the right
types; anything from a client still goes through pyVmomi's deserializer, which checks.
"""
from __future__ import annotations

from pyVmomi.VmomiSupport import Array

# the type -> (its default field values, the names of its array fields, which each object gets fresh)
_templates: dict[type, tuple[dict, tuple[str, ...]]] = {}


def _template(cls) -> tuple[dict, tuple[tuple[str, type], ...]]:
    found = _templates.get(cls)
    if found is None:
        defaults = cls().__dict__.copy()
        arrays = tuple((name, type(value)) for name, value in defaults.items() if isinstance(value, Array))
        found = _templates[cls] = (defaults, arrays)
    return found


def make(cls, **fields):
    """`cls(**fields)` for a pyVmomi data object type, without the field checks (see the module's doc)."""
    found = _templates.get(cls)
    defaults, arrays = found if found is not None else _template(cls)
    if not fields.keys() <= defaults.keys():
        name = next(name for name in fields if name not in defaults)
        raise AttributeError(f"{cls.__name__} has no property {name}")
    obj = cls.__new__(cls)
    state = obj.__dict__
    state.update(defaults)
    for name, array_type in arrays:
        if name not in fields:
            state[name] = array_type()
    # given fields last: a given array is kept as given, as before
    state.update(fields)
    return obj


def shallow_copy(value):
    """`copy.copy` of a data object (its `__dict__` copied, values shared) without copy's `__reduce_ex__` detour."""
    new = value.__class__.__new__(value.__class__)
    new.__dict__.update(value.__dict__)
    return new


def clone(value):
    """A deep copy of a tree of data objects and arrays (morefs, strings, numbers and dates are shared: immutable).

    copy.deepcopy of a VirtualDevice costs ~30x more: it goes through __reduce_ex__ and __setattr__'s checks."""
    state = getattr(value, "__dict__", None)
    if state is not None and not isinstance(value, type) and hasattr(value, "_propInfo") \
            and not hasattr(value, "_moId"):
        copy = value.__class__.__new__(value.__class__)
        copy.__dict__.update({k: clone(v) for k, v in state.items()})
        return copy
    if isinstance(value, list):
        return type(value)(clone(item) for item in value)
    return value
