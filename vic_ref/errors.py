"""Typed errors raised across vic_ref.

Every layer raises these, never a transport's own exceptions: `vic_ref.vsphere` maps vSphere faults onto them once
(`vic_ref/vsphere/faults.py`), and only `personality/errors.py` turns them into Docker's JSON errors. An error keeps the
vSphere fault behind it in `fault` (a pyVmomi object, held but never inspected here, so this module imports nothing
from pyVmomi) and names it in `fault_name` for callers that must tell two faults apart.
"""
from __future__ import annotations


class VicError(Exception):
    """The base of every vic_ref error; `str(err)` is the message a user may see."""

    default_message = "internal error"

    def __init__(self, message: str = "", *, fault: object = None, op_id: str | None = None, **details):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.fault = fault
        self.op_id = op_id
        self.details = details

    @property
    def fault_name(self) -> str | None:
        """The vSphere fault type behind this error, e.g. `vim.fault.DuplicateName`; None if there is none."""
        if self.fault is None:
            return None
        return type(self.fault).__name__

    def __repr__(self) -> str:
        extra = f", fault={self.fault_name}" if self.fault is not None else ""
        return f"{type(self).__name__}({self.message!r}{extra})"


class NotFound(VicError):
    default_message = "not found"


class Conflict(VicError):
    default_message = "conflict"


class AlreadyExists(Conflict):
    """A name or file is taken (vSphere DuplicateName, FileAlreadyExists, AlreadyExists)."""
    default_message = "already exists"


class ConcurrentModification(Conflict):
    """Someone else changed the object first (stale changeVersion: vSphere ConcurrentAccess); retry from fresh state."""
    default_message = "the object was modified concurrently"


class Busy(Conflict):
    """Another operation on the object is still running (vSphere TaskInProgress); retrying later may succeed."""
    default_message = "another operation is in progress"


class InUse(Conflict):
    default_message = "in use"


class InvalidArgument(VicError):
    default_message = "invalid argument"


class InvalidState(VicError):
    """The object is in the wrong state for the request (e.g. powered off)."""
    default_message = "invalid state"


class NotSupported(VicError):
    default_message = "not supported"


class PermissionDenied(VicError):
    default_message = "permission denied"


class AuthenticationFailed(PermissionDenied):
    """Wrong user name or password (vSphere InvalidLogin, InvalidGuestLogin)."""
    default_message = "authentication failed"


class Unavailable(VicError):
    """The target (vSphere, a guest, a datastore) can't be reached right now."""
    default_message = "unavailable"


class Timeout(VicError):
    default_message = "timed out"


class Cancelled(VicError):
    default_message = "cancelled"


class VsphereError(VicError):
    """A vSphere fault with no closer VicError type; `fault` holds it."""
    default_message = "vSphere error"


class InternalError(VicError):
    default_message = "internal error"


__all__ = [
    "VicError", "NotFound", "Conflict", "AlreadyExists", "ConcurrentModification", "Busy", "InUse",
    "InvalidArgument", "InvalidState", "NotSupported", "PermissionDenied", "AuthenticationFailed", "Unavailable",
    "Timeout", "Cancelled", "VsphereError", "InternalError",
]
