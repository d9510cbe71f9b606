"""The vim25 SOAP envelope codec, built on pyVmomi's own (de)serializer.

pyVmomi has no server side, but its streaming expat deserializer and its serializer are generic: given a static type
they read or write any vim25 value. This module only walks the envelope, looks methods up in pyVmomi's type registry and
wraps results and faults; no data XML is written by hand.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
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


# A task waiter's polls (RetrievePropertiesEx of info.state...) differ from each other only in the task's moid: the
# body with that moid masked is parsed once, and each poll gets a copy of that parse with its own moid.
_TASK_MOREF = re.compile(rb'type="Task">(task-[0-9]+)<')
_TASK_MARK = "vsim-task-mark"
_TASK_MARKED = b'type="Task">' + _TASK_MARK.encode() + b"<"
_MAX_TEMPLATED = 2048  # bytes of a body worth a template: polls, not specs
_templates: dict[tuple[bytes, str], SoapRequest] = {}
_MAX_TEMPLATES = 256


def parse_request(body: bytes, soap_action: str | None = None, version: str | None = None) -> SoapRequest:
    """Decode one SOAP request into its method, `_this` and typed arguments."""
    if version is None:
        version = version_from_soap_action(soap_action)
    if len(body) <= _MAX_TEMPLATED:
        found = _TASK_MOREF.findall(body)
        if len(found) == 1:
            key = (_TASK_MOREF.sub(_TASK_MARKED, body), version)
            template = _templates.get(key)
            if template is None:
                try:
                    template = _parse_request(key[0], version)
                except SoapRequestError:
                    template = None  # faults are worked out on the real body, with its own moid in them
                if template is not None:
                    if len(_templates) >= _MAX_TEMPLATES:
                        _templates.clear()
                    _templates[key] = template
            if template is not None:
                moid = found[0].decode()
                return SoapRequest(template.wsdl_name, _with_moid(template.this, moid),
                                   {name: _with_moid(value, moid) for name, value in template.args.items()},
                                   template.version, template.method)
    return _parse_request(body, version)


def _with_moid(value, moid: str):
    """A copy of a parsed value (data objects and arrays fresh, so a method may keep or change them) with the marked
    Task moref replaced by the Task `moid`."""
    if isinstance(value, ManagedObject):
        if value._moId == _TASK_MARK:
            return type(value)(moid, serverGuid=value._serverGuid)
        return value
    if isinstance(value, list):
        return type(value)(_with_moid(item, moid) for item in value)
    if isinstance(value, VmomiSupport.DataObject):
        copy = value.__class__.__new__(value.__class__)
        copy.__dict__.update({k: _with_moid(v, moid) for k, v in value.__dict__.items()})
        return copy
    return value


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
    return _encode_response(wsdl_name, result_type, value, version)


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
