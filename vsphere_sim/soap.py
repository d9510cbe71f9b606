"""The vim25 SOAP envelope codec, built on pyVmomi's own (de)serializer.

pyVmomi has no server side, but its streaming expat deserializer and its serializer are generic: given a static type
they read or write any vim25 value. This module only walks the envelope, looks methods up in pyVmomi's type registry and
wraps results and faults; no data XML is written by hand.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from xml.parsers.expat import ExpatError, ParserCreate

from pyVmomi import SoapAdapter, VmomiSupport, vmodl
from pyVmomi.VmomiSupport import F_OPTIONAL, ManagedMethod, ManagedObject, Object

from .soap_values import ValueReader

SOAPENV = SoapAdapter.XMLNS_SOAPENV
NS_SEP = SoapAdapter.NS_SEP
DEFAULT_VERSION = VmomiSupport.GetVersionFromVersionUri("vim25/8.0.3.0")
MAX_REQUEST_BYTES = 32 * 1024 * 1024

# The accessor pyVmomi uses for every managed property read: built ad hoc in StubAdapterAccessorImpl, not registered.
FETCH_WSDL_NAME = "Fetch"


class SoapRequestError(Exception):
    """The request is not a well-formed vim25 call; carries the fault to send back."""

    def __init__(self, fault: vmodl.MethodFault):
        super().__init__(fault.msg)
        self.fault = fault


@dataclass
class SoapRequest:
    wsdl_name: str
    this: ManagedObject
    args: dict = field(default_factory=dict)
    version: str = DEFAULT_VERSION
    method: ManagedMethod | None = None  # None only for Fetch

    @property
    def result_type(self):
        return self.method.info.result if self.method else object


def version_from_soap_action(soap_action: str | None) -> str:
    if soap_action:
        uri = soap_action.strip().strip('"')
        if uri.startswith("urn:"):
            try:
                return VmomiSupport.GetVersionFromVersionUri(uri[4:])
            except KeyError:
                pass
    return DEFAULT_VERSION


def _invalid_request(msg: str) -> SoapRequestError:
    return SoapRequestError(vmodl.fault.InvalidRequest(msg=msg))


def lookup_method(wsdl_name: str) -> ManagedMethod:
    try:
        return VmomiSupport.GetWsdlMethod("urn:vim25", wsdl_name)
    except KeyError:
        try:
            return VmomiSupport.GuessWsdlMethod(wsdl_name)
        except KeyError:
            raise KeyError(wsdl_name) from None


class _RequestReader(SoapAdapter.ExpatDeserializerNSHandlers):
    """Walks Envelope/Body/<Method>/<param>*, reading each param element as a value of its type (soap_values)."""

    def __init__(self, version: str):
        super().__init__()
        self.version = version
        self.depth = 0
        self.in_body = False
        self.wsdl_name: str | None = None
        self.method: ManagedMethod | None = None
        self.params: dict[str, Object] = {}
        self.values: dict[str, list] = {}
        self.this = None
        self.unknown_method: str | None = None  # reported once `_this` is read: MethodNotFound needs a receiver
        self.value = ValueReader(self, version)
        self.pending: tuple[str, bool] | None = None

    def _collect_pending(self):
        if self.pending is None:
            return
        name, is_array_item = self.pending
        self.pending = None
        value = self.value.result
        if name == "_this":
            self.this = value
            if self.unknown_method is not None:
                raise _method_not_found(self.unknown_method, value)
        elif is_array_item:
            self.values.setdefault(name, []).append(value)
        else:
            if name in self.values:
                raise _invalid_request(f"parameter {name} given twice")
            self.values[name] = value

    def StartElementHandler(self, tag, attr):
        if self.value.active:
            self.value.start(tag, attr)
            return
        self._collect_pending()
        self.depth += 1
        ns, _, local = tag.rpartition(NS_SEP)
        if self.depth == 1:
            if tag != SOAPENV + NS_SEP + "Envelope":
                raise _invalid_request("not a SOAP envelope")
        elif self.depth == 2:
            self.in_body = local == "Body"
        elif self.depth == 3 and self.in_body:
            if self.wsdl_name is not None:
                raise _invalid_request("more than one method in the SOAP body")
            self.wsdl_name = local
            if local != FETCH_WSDL_NAME:
                try:
                    self.method = lookup_method(local)
                except KeyError:
                    self.unknown_method = local
                else:
                    self.params = _params_of(self.method)
        elif self.depth == 4 and self.in_body:
            self._start_param(local, tag, attr)

    def _start_param(self, local, tag, attr):
        if self.unknown_method is not None and local != "_this":
            raise _invalid_request(f"Method {self.unknown_method} not found")
        if local == "_this":
            ptype, is_item = ManagedObject, False
        elif self.method is None:  # Fetch(prop)
            if local != "prop":
                raise _invalid_request(f"unexpected parameter {local} for Fetch")
            ptype, is_item = str, False
        else:
            info = self.params.get(local)
            if info is None:
                raise SoapRequestError(vmodl.fault.InvalidRequest(
                    msg=f"Unexpected element {local} in {self.wsdl_name}"))
            ptype = info.type
            is_item = issubclass(ptype, list)
            if is_item:
                ptype = ptype.Item
        self.pending = (local, is_item)
        # The param element itself is the value's element; the reader gives control back after its end tag.
        self.depth -= 1
        self.value.begin(ptype)
        self.value.start(tag, attr)

    def EndElementHandler(self, tag):
        if self.value.active:
            self.value.end(tag)
            return
        self._collect_pending()
        self.depth -= 1

    def CharacterDataHandler(self, data):
        if self.value.active:
            self.value.text(data)


@functools.lru_cache(maxsize=4096)
def _params_of(method: ManagedMethod) -> dict[str, Object]:
    return {p.name: p for p in method.info.params}


def _method_not_found(name: str, receiver) -> SoapRequestError:
    return SoapRequestError(vmodl.fault.MethodNotFound(msg=f"Method {name} not found", receiver=receiver,
                                                       method=name))


def _refuse_doctype(*_args):
    raise _invalid_request("DOCTYPE and entity declarations are not allowed")


# A task waiter's polls (RetrievePropertiesEx of info.state...) differ from each other only in the task's moid, and the
# calls on a VM without arguments of their own (PowerOnVM_Task, Destroy_Task...) only in the VM's: the body with that
# one moid masked is parsed once, and each call gets a copy of that parse with its own moid.
_MOREF = re.compile(rb'type="(Task|VirtualMachine)">((?:task|vm)-[0-9]+)</')
_TASK_MARK = "vsim-task-mark"
_MAX_TEMPLATED = 2048  # bytes of a body worth a template: polls, not specs
_templates: dict[tuple[bytes, str], tuple[SoapRequest, Any, dict]] = {}
_MAX_TEMPLATES = 256
# masked VM bodies seen once: a template is made at the second sighting, so one-off bodies (a rename's spec names the
# VM's new name) cost no template and evict none
_seen_once: dict[tuple[bytes, str], None] = {}


def parse_request(body: bytes, soap_action: str | None = None, version: str | None = None) -> SoapRequest:
    """Decode one SOAP request into its method, `_this` and typed arguments."""
    if version is None:
        version = version_from_soap_action(soap_action)
    if len(body) <= _MAX_TEMPLATED:
        found = _MOREF.findall(body)
        if len(found) == 1 and (match := _markup_moref(body)) is not None:
            key = (body[:match.start(2)] + _TASK_MARK.encode() + body[match.end(2):], version)
            entry = _templates.get(key)
            if entry is None and found[0][0] != b"Task" and key not in _seen_once:
                if len(_seen_once) >= _MAX_TEMPLATES:
                    _seen_once.clear()
                _seen_once[key] = None
                return _parse_request(body, version)
            if entry is None:
                _seen_once.pop(key, None)
                try:
                    template = _parse_request(key[0], version)
                except SoapRequestError:
                    template = None  # faults are worked out on the real body, with its own moid in them
                if template is not None:
                    if len(_templates) >= _MAX_TEMPLATES:
                        _templates.clear()
                    entry = _templates[key] = (template, _copy_plan(template.this),
                                               {name: _copy_plan(value) for name, value in template.args.items()})
            if entry is not None:
                template, this_plan, arg_plans = entry
                moid = found[0][1].decode()
                return SoapRequest(template.wsdl_name, this_plan(moid) if this_plan else template.this,
                                   {name: plan(moid) if plan else template.args[name]
                                    for name, plan in arg_plans.items()},
                                   template.version, template.method)
    return _parse_request(body, version)


def _markup_moref(body: bytes):
    """The one moref match of `body` when it is markup, inside a start tag (`<` is never text, so the last `<` before
    it comes after the last `>`): text that merely looks like a moref is no moref to mask."""
    match = _MOREF.search(body)
    start = match.start()
    return match if body.rfind(b"<", 0, start) > body.rfind(b">", 0, start) else None


def _copy_plan(value):
    """How to copy a parsed value for one poll, worked out once per template: a function of the call's moid that
    returns a copy (data objects and arrays fresh, so a method may keep or change them) with the marked Task moref
    replaced by that moid; None when the value itself is shared (plain values and other morefs are immutable)."""
    if isinstance(value, ManagedObject):
        if value._moId == _TASK_MARK:
            cls, guid = type(value), value._serverGuid
            return lambda moid: cls(moid, serverGuid=guid)
        return None
    if isinstance(value, list):
        cls = type(value)
        pairs = [(item, _copy_plan(item)) for item in value]
        if not any(plan for _, plan in pairs):
            items = list(value)
            return lambda moid: cls(items)
        return lambda moid: cls([plan(moid) if plan else item for item, plan in pairs])
    if isinstance(value, VmomiSupport.DataObject):
        cls, fields = value.__class__, dict(value.__dict__)
        plans = [(key, plan) for key, item in fields.items() if (plan := _copy_plan(item)) is not None]

        def copy(moid):
            new = cls.__new__(cls)
            attrs = new.__dict__
            attrs.update(fields)
            for key, plan in plans:
                attrs[key] = plan(moid)
            return new
        return copy
    return None


def _parse_request(body: bytes, version: str) -> SoapRequest:
    if len(body) > MAX_REQUEST_BYTES:
        raise _invalid_request(f"request of {len(body)} bytes exceeds the limit of {MAX_REQUEST_BYTES}")
    reader = _RequestReader(version)
    parser = ParserCreate(namespace_separator=NS_SEP)
    parser.buffer_text = True
    parser.StartElementHandler = reader.StartElementHandler
    parser.EndElementHandler = reader.EndElementHandler
    parser.CharacterDataHandler = reader.CharacterDataHandler
    parser.StartNamespaceDeclHandler = reader.StartNamespaceDeclHandler
    parser.EndNamespaceDeclHandler = reader.EndNamespaceDeclHandler
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    try:
        parser.Parse(body, True)
        reader._collect_pending()
    except SoapRequestError:
        raise
    except ExpatError as err:
        raise _invalid_request(f"malformed XML: {err}") from None
    except (TypeError, KeyError, AttributeError, ValueError) as err:
        raise _invalid_request(f"cannot parse request: {type(err).__name__}: {err}") from None
    if reader.wsdl_name is None:
        raise _invalid_request("no method in the SOAP body")
    if reader.unknown_method is not None:
        raise _invalid_request(f"Method {reader.unknown_method} not found")
    if reader.this is None:
        raise _invalid_request(f"missing _this in {reader.wsdl_name}")
    args = dict(reader.values)
    if reader.method is not None:
        for name, info in reader.params.items():
            if name in args:
                if issubclass(info.type, list):
                    args[name] = info.type(args[name])
            elif not info.flags & F_OPTIONAL:
                raise SoapRequestError(vmodl.fault.InvalidRequest(
                    msg=f"Required parameter {name} of {reader.wsdl_name} is missing"))
            else:
                args[name] = None
    elif "prop" not in args:
        raise _invalid_request("missing prop in Fetch")
    return SoapRequest(reader.wsdl_name, reader.this, args, version, reader.method)


@functools.lru_cache(maxsize=64)
def _ns_map_cached(version: str) -> dict:
    ns_map = SoapAdapter.SOAP_NSMAP.copy()
    ns_map[VmomiSupport.GetWsdlNamespace(version)] = ""
    return ns_map


def _ns_map(version: str) -> dict:
    return dict(_ns_map_cached(version))


_ENVELOPE_START = SoapAdapter.XML_HEADER + "\n" + SoapAdapter.SOAP_START
_ENVELOPE_END = SoapAdapter.SOAP_END
_MOID_MARK = "vsim-moid-mark"
_PLAIN_MOID = re.compile(r"^[A-Za-z0-9_.:\-\[\]]+$")
# (method, result type, version, moref class) -> the response around the moid, for calls that answer a moref
_moref_responses: dict[tuple, tuple[bytes, bytes]] = {}


def encode_response(wsdl_name: str, result_type, value, version: str) -> bytes:
    if isinstance(value, ManagedObject) and not value._serverGuid and _PLAIN_MOID.match(value._moId):
        # every *_Task call answers a Task moref: pyVmomi's bytes for it, made once per method, with the moid in
        key = (wsdl_name, result_type, version, type(value))
        parts = _moref_responses.get(key)
        if parts is None:
            head, _, tail = _encode_response(wsdl_name, result_type, type(value)(_MOID_MARK), version) \
                .partition(_MOID_MARK.encode())
            parts = _moref_responses[key] = (head, tail)
        return parts[0] + value._moId.encode() + parts[1]
    if type(value) is _RetrieveResult:
        shape = _result_shape(value)
        encoded = _templated_result(wsdl_name, result_type, version, *shape) if shape is not None else None
        if encoded is not None:
            return encoded
    return _encode_response(wsdl_name, result_type, value, version)


# A task poll's answer (RetrievePropertiesEx of one object: states, bools and morefs) differs from the last one
# of the same shape only in its moids: pyVmomi's bytes for the shape, made once, with the moids put in.
_RetrieveResult = vmodl.query.PropertyCollector.RetrieveResult
_ObjectContent = vmodl.query.PropertyCollector.ObjectContent
_DynamicProperty = vmodl.DynamicProperty
_MARKS = re.compile(rb"vsim-ref-mark-([0-9]+)\.")
_result_templates: dict[tuple, list[bytes] | None] = {}
_WORD = re.compile(r"[A-Za-z]{1,24}\Z")  # a state ("success", "poweredOn"): few values, worth a template each


def _plain_ref(value) -> bool:
    return isinstance(value, ManagedObject) and not value._serverGuid and bool(_PLAIN_MOID.match(value._moId))


def _result_shape(value):
    """(shape, moids) of a one-object RetrieveResult whose values are enums, bools, single words (a task's state is a
    plain string) or plain morefs; else None."""
    if value.token is not None or len(value.objects) != 1:
        return None
    content = value.objects[0]
    if type(content) is not _ObjectContent or content.missingSet or not _plain_ref(content.obj):
        return None
    moids = [content.obj._moId]
    props = []
    for prop in content.propSet:
        if type(prop) is not _DynamicProperty:
            return None
        val, vtype = prop.val, type(prop.val)
        if isinstance(val, ManagedObject):
            if not _plain_ref(val):
                return None
            moids.append(val._moId)
            props.append((prop.name, vtype, None))
        elif vtype is bool or isinstance(val, VmomiSupport.Enum) or (vtype is str and _WORD.match(val)):
            props.append((prop.name, vtype, val))
        else:
            return None
    return (type(content.obj), tuple(props)), moids


def _templated_result(wsdl_name: str, result_type, version: str, shape: tuple, moids: list[str]) -> bytes | None:
    key = (wsdl_name, result_type, version, shape)
    parts = _result_templates.get(key, False)
    if parts is False:
        ref_type, props = shape
        marks = iter(range(len(moids)))

        def mark(cls):
            return cls(f"vsim-ref-mark-{next(marks)}.")
        marked = _RetrieveResult(objects=[_ObjectContent(obj=mark(ref_type), propSet=[
            _DynamicProperty(name=name, val=mark(vtype) if val is None else val) for name, vtype, val in props])])
        pieces = _MARKS.split(_encode_response(wsdl_name, result_type, marked, version))
        # the marks must come back once each, in order; anything else and this shape is encoded plainly
        parts = pieces[0::2] if pieces[1::2] == [str(i).encode() for i in range(len(moids))] else None
        if len(_result_templates) >= _MAX_TEMPLATES:
            _result_templates.clear()
        _result_templates[key] = parts
    if parts is None:
        return None
    out = [parts[0]]
    for moid, part in zip(moids, parts[1:]):
        out.append(moid.encode())
        out.append(part)
    return b"".join(out)


def _encode_response(wsdl_name: str, result_type, value, version: str) -> bytes:
    info = Object(name="returnval", type=result_type, version=version, flags=F_OPTIONAL)
    body = SoapAdapter.SerializeToStr(value, info, version, _ns_map(version))
    ns = VmomiSupport.GetWsdlNamespace(version)
    return (f'{_ENVELOPE_START}<{wsdl_name}Response xmlns="{ns}">{body}</{wsdl_name}Response>'
            f"{_ENVELOPE_END}").encode()


_FIRST_TAG = re.compile(r"^<([A-Za-z0-9_]+)")


def encode_fault(fault: vmodl.MethodFault, version: str) -> bytes:
    """A SOAP fault with pyVmomi's fault detail; pyVmomi raises the same class with the same fields."""
    msg = fault.msg or ""
    if not fault.msg:
        fault.msg = ""
    ns = VmomiSupport.GetWsdlNamespace(version)
    info = Object(name=fault._wsdlName + "Fault", type=object, version=version, flags=0)
    detail = SoapAdapter.SerializeFaultDetail(fault, info, version, _ns_map(version))
    # The detail's first element must carry the vim25 namespace; <detail> itself stays unqualified for the client.
    detail = _FIRST_TAG.sub(lambda m: f'<{m.group(1)} xmlns="{ns}"', detail, count=1)
    return (f"{_ENVELOPE_START}<soapenv:Fault><faultcode>ServerFaultCode</faultcode>"
            f"<faultstring>{SoapAdapter.XmlEscape(msg)}</faultstring><detail>{detail}</detail>"
            f"</soapenv:Fault>{_ENVELOPE_END}").encode()
