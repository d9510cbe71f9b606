"""Guest operations: run a program in a VM's guest (how the port layer sends the tether `reload` and `kill SIG`).

VIC authenticates as the container ID with no password (`lib/portlayer/exec/base.go` startGuestProgram); the
tether's toolbox accepts only that ID or an attached volume label.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pyVmomi import vim

from ..trace import Operation

if TYPE_CHECKING:
    from .session import Session


def start_program(session: Session, op: Operation, vm: vim.VirtualMachine, program: str, arguments: str = "", *,
                  username: str, password: str = "", env: list[str] | None = None,
                  working_directory: str | None = None) -> int:
    """StartProgramInGuest with NamePasswordAuthentication; the guest's pid of the program.

    Faults come back as VicErrors: GuestOperationsUnavailable → Unavailable, InvalidGuestLogin →
    AuthenticationFailed, InvalidPowerState/InvalidState → InvalidState.
    """
    manager = session.content.guestOperationsManager
    processes = session.call(op, getattr, manager, "processManager")
    auth = vim.vm.guest.NamePasswordAuthentication(username=username, password=password, interactiveSession=False)
    spec = vim.vm.guest.ProcessManager.ProgramSpec(programPath=program, arguments=arguments,
                                                   envVariables=env or None, workingDirectory=working_directory)
    op.debug("guest program %s %s on %s", program, arguments, vm._moId)
    return session.call(op, processes.StartProgramInGuest, vm, auth, spec)
