"""The `/_sim/...` control API: a small JSON API for tests and tools, beside the vim25 endpoint.

    POST   /_sim/reset              back to a fresh default inventory; fault rules and call counts cleared too
                                    (body, optional: {"seed": false} for an empty inventory)
    GET    /_sim/faults             the fault rules in force
    POST   /_sim/faults             add a rule, or a list of rules: {"method", "object", "probability", "count",
                                    "delay", "delay_task_only", "fault", "message", "fields"}; answers the rules as
                                    stored (with their ids)
    DELETE /_sim/faults[/<id>]      drop every rule, or one
    GET    /_sim/inventory          every managed object: moid, type, name, parent; for VMs power state and key config
                                    (?type=VirtualMachine to filter by vim25 type name)
    GET    /_sim/about              the vim25 methods each simulated type implements, like vcsim's /about
    GET    /_sim/counts             calls served per vim25 method;  DELETE resets them
    GET    /_sim/state              the state store: path, objects and properties saved

Authentication: a request is allowed when it carries HTTP basic auth with the sim's user and password, or the cookie of
an authenticated vim25 session (`vmware_soap_session`, as pyVmomi holds it), or comes from a loopback address. The
loopback exception keeps test tools simple on one machine; a sim listening on another interface asks anyone else to
authenticate, as vCenter would.
"""
from __future__ import annotations

import base64
import binascii
import importlib
import inspect
import ipaddress
import json
import pkgutil
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from pyVmomi import VmomiSupport, vim

from .faults import FaultRule
from .sessions import COOKIE_NAME

JSON = "application/json"


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def handle_control_request(handler, method: str) -> None:
    """Serve one `/_sim/...` request on `handler` (the server's BaseHTTPRequestHandler)."""
    sim = handler.server.sim
    parts = urlsplit(handler.path)
    route = parts.path.removeprefix("/_sim").strip("/")
    query = parse_qs(parts.query)
    try:
        body = b""
        if method in ("POST", "PUT", "DELETE") and (handler.headers.get("Content-Length")
                                                    or handler.headers.get("Transfer-Encoding")):
            body = handler._read_body()
            if body is None:  # already answered (too large)
                return
        if not _authorized(handler, sim):
            _reply(handler, 401, {"error": "authentication required (basic auth, a vim25 session cookie, "
                                           "or a loopback client)"},
                   headers={"WWW-Authenticate": 'Basic realm="vsphere_sim"'})
            return
        status, payload = _route(sim, method, route, query, body)
    except ControlError as err:
        status, payload = err.status, {"error": str(err)}
    _reply(handler, status, payload)


def _reply(handler, status: int, payload, headers: dict | None = None):
    body = (json.dumps(payload, indent=1, sort_keys=True, default=str) + "\n").encode()
    if headers:
        handler._send(status, body, JSON, headers=headers)
    else:
        handler._send(status, body, JSON)


# -- authentication -------------------------------------------------------------------------------------------------
def _authorized(handler, sim) -> bool:
    auth = handler.headers.get("Authorization") or ""
    if auth.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return user == sim.user and password == sim.password
    cookie = handler.headers.get("Cookie")
    if cookie:
        try:
            jar = SimpleCookie(cookie)
        except CookieError:
            jar = {}
        if COOKIE_NAME in jar:
            session = sim.sessions.get(jar[COOKIE_NAME].value)
            if session is not None and session.authenticated:
                return True
    try:
        return ipaddress.ip_address(handler.client_address[0].split("%")[0]).is_loopback
    except ValueError:
        return False


# -- routing --------------------------------------------------------------------------------------------------------
def _route(sim, method: str, route: str, query: dict, body: bytes):
    head, _, rest = route.partition("/")
    if head == "reset" and method == "POST":
        seed = _json_body(body, {}).get("seed", True) if body else True
        sim.reset(seed=bool(seed))
        sim.dispatcher.fault_rules.clear()
        _clear_counts(sim)
        return 200, {"reset": True, "objects": len(sim.registry.objects)}
    if head == "faults":
        return _faults(sim, method, rest, body)
    if head == "inventory" and method == "GET":
        wanted = set(query.get("type", []))
        return 200, {"objects": inventory(sim, wanted or None)}
    if head == "about" and method == "GET":
        return 200, about()
    if head == "counts":
        if method == "GET":
            with sim.dispatcher._counts_lock:
                counts = dict(sim.dispatcher.call_counts)
            return 200, {"counts": counts, "total": sum(counts.values())}
        if method == "DELETE":
            _clear_counts(sim)
            return 200, {"counts": {}, "total": 0}
    if head == "state" and method == "GET":
        return 200, sim.store.stats() if sim.store is not None else {"path": None}
    known = {"reset", "faults", "inventory", "about", "counts", "state"}
    if head in known:
        raise ControlError(405, f"{method} not allowed on /_sim/{head}")
    raise ControlError(404, f"no control endpoint /_sim/{route}")


def _json_body(body: bytes, default):
    if not body.strip():
        return default
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ControlError(400, f"body is not JSON: {err}")


def _clear_counts(sim):
    with sim.dispatcher._counts_lock:
        sim.dispatcher.call_counts.clear()


# -- fault rules ----------------------------------------------------------------------------------------------------
_RULE_FIELDS = {"method", "object", "probability", "count", "delay", "delay_task_only", "fault", "message", "fields"}


def _faults(sim, method: str, rest: str, body: bytes):
    rules = sim.dispatcher.fault_rules
    if method == "GET" and not rest:
        return 200, {"rules": rules.list()}
    if method == "POST" and not rest:
        data = _json_body(body, None)
        if data is None:
            raise ControlError(400, "a rule (JSON object) or a list of rules is required")
        added = [rules.add(_rule(item)).as_dict() for item in (data if isinstance(data, list) else [data])]
        return 200, {"rules": added}
    if method == "DELETE":
        if not rest:
            rules.clear()
            return 200, {"rules": []}
        try:
            rule_id = int(rest)
        except ValueError:
            raise ControlError(404, f"no fault rule {rest}")
        # FaultRules has no remove-by-id: rebuild the list under its lock
        with rules._lock:
            before = len(rules._rules)
            rules._rules[:] = [r for r in rules._rules if r.id != rule_id]
            removed = before != len(rules._rules)
        if not removed:
            raise ControlError(404, f"no fault rule {rule_id}")
        return 200, {"removed": rule_id}
    raise ControlError(405, f"{method} not allowed on /_sim/faults/{rest}".rstrip("/"))


def _rule(data) -> FaultRule:
    if not isinstance(data, dict):
        raise ControlError(400, "a fault rule is a JSON object")
    unknown = set(data) - _RULE_FIELDS
    if unknown:
        raise ControlError(400, f"unknown fault rule fields: {', '.join(sorted(unknown))}")
    try:
        rule = FaultRule(**data)
        rule.probability = float(rule.probability)
        rule.delay = float(rule.delay or 0)
        if rule.count is not None:
            rule.count = int(rule.count)
        if not isinstance(rule.fields, dict):
            raise ValueError("fields must be an object")
        if rule.fault is None and not rule.delay:
            raise ValueError("a rule needs a fault or a delay")
        if rule.fault is not None:
            rule.fields = _fault_fields(rule.fault, rule.fields)
            rule.make_fault(None)  # every field must fit the fault type now, not when the rule fires
    except (TypeError, ValueError) as err:
        raise ControlError(400, f"bad fault rule: {err}")
    return rule


def _fault_fields(fault_name: str, fields: dict) -> dict:
    """JSON field values for a fault: `{"type": "VirtualMachine", "value": "vm-1"}` (or "vm:vm-1") becomes a moref."""
    from .faults import resolve_fault_class
    cls = resolve_fault_class(fault_name)
    out = {}
    for name, value in fields.items():
        try:
            ptype = cls._GetPropertyInfo(name).type
        except AttributeError:
            raise ValueError(f"{cls._wsdlName} has no field {name}")
        if isinstance(ptype, type) and issubclass(ptype, VmomiSupport.ManagedObject) and value is not None:
            if isinstance(value, dict):
                value = VmomiSupport.GetWsdlType("urn:vim25", value["type"])(value["value"])
            else:
                value = ptype(str(value))
        out[name] = value
    return out


# -- inventory dump -------------------------------------------------------------------------------------------------
def inventory(sim, types: set[str] | None = None) -> list[dict]:
    with sim.lock:
        out = []
        for moid, obj in sorted(sim.registry.objects.items()):
            wsdl = obj.vim_type._wsdlName
            if types is not None and wsdl not in types:
                continue
            entry = {"moid": moid, "type": wsdl}
            props = obj.props
            if "name" in props:
                entry["name"] = props["name"]
            parent = props.get("parent")
            if parent is not None:
                entry["parent"] = parent._moId
            if isinstance(obj.ref, vim.VirtualMachine):
                entry.update(_vm_summary(obj))
            elif isinstance(obj.ref, vim.Folder):
                entry["children"] = [ref._moId for ref in props.get("childEntity") or ()]
            elif isinstance(obj.ref, vim.Task):
                info = props.get("info")
                if info is not None:
                    entry.update(task=info.descriptionId, state=info.state,
                                 entity=info.entity._moId if info.entity is not None else None)
            out.append(entry)
        return out


def _vm_summary(vm) -> dict:
    def get(path):
        try:
            return vm.get_path(path)
        except Exception:  # a VM half-way through creation; the dump shows what there is
            return None

    out = {"powerState": get("runtime.powerState"), "resourcePool": _moid(get("resourcePool")),
           "datastores": [ref._moId for ref in get("datastore") or ()]}
    config = get("config")
    if config is not None:
        hardware = getattr(config, "hardware", None)
        files = getattr(config, "files", None)
        out["config"] = {
            "uuid": getattr(config, "uuid", None), "instanceUuid": getattr(config, "instanceUuid", None),
            "guestId": getattr(config, "guestId", None), "template": getattr(config, "template", None),
            "changeVersion": getattr(config, "changeVersion", None),
            "vmPathName": getattr(files, "vmPathName", None) if files is not None else None,
            "numCPU": getattr(hardware, "numCPU", None) if hardware is not None else None,
            "memoryMB": getattr(hardware, "memoryMB", None) if hardware is not None else None,
            "devices": [_device(d) for d in (getattr(hardware, "device", None) or ())] if hardware else [],
            "extraConfig": len(getattr(config, "extraConfig", None) or ()),
        }
    return out


def _device(device) -> dict:
    out = {"key": device.key, "type": type(device)._wsdlName}
    label = getattr(getattr(device, "deviceInfo", None), "label", None)
    if label:
        out["label"] = label
    file_name = getattr(getattr(device, "backing", None), "fileName", None)
    if file_name:
        out["file"] = file_name
    return out


def _moid(ref):
    return ref._moId if ref is not None else None


# -- about ----------------------------------------------------------------------------------------------------------
def about() -> dict:
    """vim25 methods implemented per managed type: impl methods whose names are WSDL method names of their type."""
    from . import objects
    from .objects.base import ManagedObjectImpl
    from .tasks import TaskImpl

    classes = {TaskImpl}
    for info in pkgutil.iter_modules(objects.__path__):
        module = importlib.import_module(f"{objects.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            # the abstract bases (ManagedObject, ManagedEntity) are no type a client can meet
            if issubclass(cls, ManagedObjectImpl) and cls.vim_type not in (VmomiSupport.ManagedObject,
                                                                          vim.ManagedEntity):
                classes.add(cls)
    methods: dict[str, set[str]] = {}
    for cls in classes:
        names = methods.setdefault(cls.vim_type._wsdlName, set())
        for wsdl_name in _wsdl_methods(cls.vim_type):
            if callable(getattr(cls, wsdl_name, None)):
                names.add(wsdl_name)
    total = sum(len(v) for v in methods.values())
    return {"methods": {k: sorted(v) for k, v in sorted(methods.items())}, "types": len(methods),
            "total": total, "note": "every type also answers Fetch (pyVmomi's property accessor)"}


def _wsdl_methods(vim_type) -> set[str]:
    names = set()
    for klass in vim_type.__mro__:
        for info in getattr(klass, "_methodInfo", {}).values():
            names.add(info.wsdlName)
    return names
