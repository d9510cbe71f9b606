"""vSphere faults → VicError: the one place vic_ref maps them (ARCHITECTURE style rule 3).

The VicError keeps the fault in `.fault` (and its type name in `.fault_name`); the message is vSphere's own text.
"""
from __future__ import annotations

import socket
from http.client import HTTPException

from pyVmomi import vim, vmodl

from .. import errors

# Most specific first: the first isinstance match wins (InvalidPowerState before InvalidState, etc.).
_FAULT_MAP: tuple[tuple[type, type[errors.VicError]], ...] = (
    (vim.fault.ConcurrentAccess, errors.ConcurrentModification),
    (vim.fault.TaskInProgress, errors.Busy),  # includes VAppTaskInProgress
    (vim.fault.DuplicateName, errors.AlreadyExists),
    (vim.fault.FileAlreadyExists, errors.AlreadyExists),
    (vim.fault.AlreadyExists, errors.AlreadyExists),
    (vmodl.fault.ManagedObjectNotFound, errors.NotFound),
    (vim.fault.FileNotFound, errors.NotFound),
    (vim.fault.NotFound, errors.NotFound),
    (vim.fault.InvalidDatastorePath, errors.InvalidArgument),  # a malformed "[ds] path"
    (vim.fault.InvalidDatastore, errors.NotFound),  # an unknown datastore in a path
    (vim.fault.InvalidLogin, errors.AuthenticationFailed),
    (vim.fault.InvalidGuestLogin, errors.AuthenticationFailed),
    (vim.fault.NoPermission, errors.PermissionDenied),  # includes NotAuthenticated
    (vim.fault.GuestOperationsUnavailable, errors.Unavailable),
    (vmodl.fault.HostCommunication, errors.Unavailable),
    (vim.fault.InvalidState, errors.InvalidState),  # includes InvalidPowerState
    (vim.fault.ResourceInUse, errors.InUse),
    (vim.fault.FileLocked, errors.InUse),
    (vim.fault.InvalidName, errors.InvalidArgument),
    (vmodl.fault.InvalidArgument, errors.InvalidArgument),
    (vmodl.fault.NotSupported, errors.NotSupported),
    (vmodl.fault.NotImplemented, errors.NotSupported),
    (vmodl.fault.MethodNotFound, errors.NotSupported),
    (vim.fault.Timedout, errors.Timeout),
    (vmodl.fault.RequestCanceled, errors.Cancelled),
)

# Faults worth retrying as they are (VIC tasks.IsTransientError), besides ConcurrentAccess which needs fresh state.
TRANSIENT_FAULTS: tuple[type, ...] = (
    vim.fault.TaskInProgress, vim.fault.NetworkDisruptedAndConfigRolledBack, vim.fault.FailToLockFaultToleranceVMs,
    vmodl.fault.HostCommunication,
)

# Transport failures: the target is down, restarting or unreachable.
TRANSPORT_ERRORS: tuple[type, ...] = (socket.error, HTTPException, ConnectionError)


def fault_message(fault: vmodl.MethodFault) -> str:
    """vSphere's text for a fault: its msg, else its localized messages, else its type name."""
    if getattr(fault, "msg", None):
        return fault.msg
    messages = [m.message for m in (getattr(fault, "faultMessage", None) or []) if getattr(m, "message", None)]
    if messages:
        return "; ".join(messages)
    return type(fault).__name__


def to_vic_error(err: BaseException, context: str = "", op_id: str | None = None) -> errors.VicError:
    """The VicError for a pyVmomi fault or transport error (a VicError passes through unchanged)."""
    if isinstance(err, errors.VicError):
        return err
    prefix = f"{context}: " if context else ""
    if isinstance(err, vmodl.MethodFault):
        error_type = next((vic for fault_type, vic in _FAULT_MAP if isinstance(err, fault_type)),
                          errors.VsphereError)
        return error_type(prefix + fault_message(err), fault=err, op_id=op_id)
    if isinstance(err, TRANSPORT_ERRORS):
        return errors.Unavailable(f"{prefix}vSphere is unreachable: {err}", op_id=op_id)
    return errors.InternalError(f"{prefix}{type(err).__name__}: {err}", op_id=op_id)


def is_fault(err: BaseException, *fault_types: type) -> bool:
    """Whether `err` is (or is a VicError carrying) one of `fault_types`."""
    fault = err.fault if isinstance(err, errors.VicError) else err
    return isinstance(fault, fault_types)


def is_vsphere_error(err: BaseException) -> bool:
    """Errors that `to_vic_error` maps: vSphere faults and transport failures."""
    return isinstance(err, (vmodl.MethodFault, *TRANSPORT_ERRORS))
