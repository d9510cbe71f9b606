"""vim25 values from SOAP elements: pyVmomi's `SoapDeserializer`, rule for rule, made cheap enough for every call.

pyVmomi's deserializer builds each data object with its checking constructor (the whole property list walked per
object: ~30 µs for a ConfigSpec) and type-checks every field it sets; a RetrievePropertiesEx of one task cost
~130 µs to read, more than the call itself. This is the same algorithm (`StartElementHandler` / `EndElementHandler`
of `pyVmomi.SoapAdapter.SoapDeserializer`) with its lookups cached, data objects made from a template (`data.make`)
and a field's type check skipped only where the value's type is exactly the field's (the check would pass); any other
value is set through pyVmomi's checking `setattr`, so bad input fails as it did.
"""
from __future__ import annotations

import base64
from datetime import datetime

from pyVmomi import Iso8601, SoapAdapter
from pyVmomi.VmomiSupport import (
    DataObject,
    Enum,
    GetCompatibleType,
    GetWsdlMethod,
    GuessWsdlMethod,
    ManagedMethod,
    ManagedObject,
    UnknownManagedMethod,
    binary,
)

from .objects.data import make

XSI_TYPE = SoapAdapter.XSI_TYPE
LocalizedMethodFault = SoapAdapter.LocalizedMethodFault
isDynamicType = SoapAdapter.isDynamicType

# what a type is, asked once per type: a moref type, a data object or array (an instance is built), or a leaf
_MANAGED, _BUILT, _LEAF = 0, 1, 2
_kinds: dict[type, int] = {}
_compatible: dict[tuple[type, str], type] = {}
_wsdl_types: dict[tuple[str, str, bool], type] = {}
_prop_types: dict[tuple[type, str], tuple[str, type, bool]] = {}


def _kind(t: type) -> int:
    kind = _kinds.get(t)
    if kind is None:
        if issubclass(t, ManagedObject):
            kind = _MANAGED
        elif issubclass(t, (DataObject, list)):
            kind = _BUILT
        else:
            kind = _LEAF
        _kinds[t] = kind
    return kind


def _compatible_type(t: type, version: str) -> type:
    key = (t, version)
    found = _compatible.get(key)
    if found is None:
        found = _compatible[key] = GetCompatibleType(t, version)
    return found


def _lookup_wsdl_type(ns: str, name: str, allow_moref: bool = False) -> type:
    """SoapDeserializer.LookupWsdlType, cached (a miss raises KeyError each time, as before)."""
    key = (ns, name, allow_moref)
    found = _wsdl_types.get(key)
    if found is None:  # pyVmomi's own method (it uses nothing of its instance)
        found = _wsdl_types[key] = SoapAdapter.SoapDeserializer.LookupWsdlType(None, ns, name, allow_moref)
    return found


def _prop(cls: type, name: str) -> tuple[str, type, bool]:
    """(property name, its type, whether the type is an array) of a data object type's field."""
    key = (cls, name)
    found = _prop_types.get(key)
    if found is None:
        info = cls._GetPropertyInfo(name)
        found = _prop_types[key] = (info.name, info.type, issubclass(info.type, list))
    return found


def _new(t: type):
    if issubclass(t, DataObject) and not issubclass(t, Exception):  # faults keep their own constructor
        return make(t)
    return t()


class ValueReader:
    """Reads one element (and what is inside it) as a value of a static type; fed by the request reader's expat
    handlers while `active`."""

    def __init__(self, ns_reader, version: str | None):
        self.ns_reader = ns_reader  # resolves xsi:type prefixes (ExpatDeserializerNSHandlers)
        self.version = version
        self.stack: list = []
        self.data: list[str] = []
        self.server_guid: str | None = None
        self.result_type: type = object
        self.result = None
        self.active = False

    def begin(self, result_type: type):
        self.result_type = result_type
        self.result = result_type() if issubclass(result_type, list) else None
        self.stack = []
        self.data = []
        self.active = True

    def start(self, tag: str, attr: dict):
        self.data = []
        self.server_guid = None
        as_localized_fault = True
        stack = self.stack
        if not stack:
            obj_type = self.result_type
        else:
            top = stack[-1]
            if isinstance(top, list):
                obj_type = top.Item
            elif isinstance(top, DataObject):
                name = tag.rpartition(" ")[2]
                obj_type = _prop(type(top), name)[1]
                if name == "fault" and isinstance(top, LocalizedMethodFault):
                    as_localized_fault = False
            else:
                raise TypeError(f"Invalid type for tag {tag}")
        xsi_type = attr.get(XSI_TYPE)
        if xsi_type:
            if not isDynamicType(obj_type):
                ns, name = self.ns_reader.GetNSAndWsdlname(xsi_type)
                dyn_type = _lookup_wsdl_type(ns, name, True)
                if not (issubclass(dyn_type, list) and issubclass(obj_type, list)):
                    obj_type = dyn_type
        elif issubclass(obj_type, list):
            obj_type = obj_type.Item
        if self.version:
            obj_type = _compatible_type(obj_type, self.version)
        kind = _kind(obj_type)
        if kind == _MANAGED:
            ns, name = self.ns_reader.GetNSAndWsdlname(attr["type"])
            if "serverGuid" in attr:
                self.server_guid = attr["serverGuid"]
            stack.append(_lookup_wsdl_type(ns, name))
        elif kind == _BUILT:
            if as_localized_fault and issubclass(obj_type, Exception):
                obj_type = LocalizedMethodFault
            stack.append(_new(obj_type))
        else:
            stack.append(obj_type)

    def end(self, tag: str) -> bool:
        """Close an element; True when it was the value's own (the value is then `result`)."""
        stack = self.stack
        obj = stack.pop()
        if isinstance(obj, type):
            obj = self._leaf(obj, "".join(self.data))
        elif isinstance(obj, LocalizedMethodFault):
            obj.fault.msg = obj.localizedMessage
            obj = obj.fault
        if stack:
            top = stack[-1]
            if isinstance(top, list):
                top.append(obj)
            elif isinstance(top, DataObject):
                name, prop_type, is_array = _prop(type(top), tag.rpartition(" ")[2])
                if is_array and not isinstance(obj, list):
                    getattr(top, name).append(obj)
                elif type(obj) is prop_type:  # the check setattr would make passes: skip it
                    top.__dict__[name] = obj
                else:
                    setattr(top, name, obj)
            else:
                setattr(top, tag.rpartition(" ")[2], obj)
            return False
        if not isinstance(obj, list) and issubclass(self.result_type, list):
            self.result.append(obj)
        else:
            self.result = obj
        self.active = False
        return True

    def text(self, data: str):
        self.data.append(data)

    def _leaf(self, obj: type, data: str):
        if obj is str:
            return data
        if obj is type:
            if data is None or data == "":
                return None
            try:
                ns, name = self.ns_reader.GetNSAndWsdlname(data)
                return _lookup_wsdl_type(ns, name)
            except KeyError:
                raise TypeError(data) from None
        if obj is ManagedMethod:
            ns, name = self.ns_reader.GetNSAndWsdlname(data)
            try:
                return GetWsdlMethod(ns, name)
            except KeyError:
                try:
                    return GuessWsdlMethod(name)
                except KeyError:
                    return UnknownManagedMethod(name)
        if obj is bool:
            if data == "0" or data.lower() == "false":
                return False
            if data == "1" or data.lower() == "true":
                return True
            raise TypeError(data)
        if obj is binary:
            return obj(base64.b64decode(data))
        if obj is datetime:
            value = Iso8601.ParseISO8601(data)
            if not value:
                raise TypeError(data)
            return value
        if _kind(obj) == _MANAGED:
            return obj(data, None, self.server_guid)
        if issubclass(obj, Enum):
            return getattr(obj, data)
        return obj(data)

