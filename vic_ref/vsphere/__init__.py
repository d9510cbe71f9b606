"""vic_ref's way to vSphere: the only package in vic_ref that imports pyVmomi.

Other packages use `Session` and the helpers here, and take pyVmomi types from here too (`from vic_ref.vsphere import
vim`) rather than importing pyVmomi themselves; every vSphere fault reaches them as a `vic_ref.errors.VicError`.
"""
from pyVmomi import vim, vmodl

from .datastore import DatastorePath, download, iter_download, upload
from .faults import fault_message, is_fault, to_vic_error
from .finder import Finder
from .guest import start_program
from .options import option_dict, option_values
from .properties import ObjectProperties, retrieve, retrieve_one, retrieve_view
from .session import Session, Target
from .tasks import retry_on_conflict, wait_for_task

__all__ = [
    "vim", "vmodl", "Session", "Target", "Finder", "DatastorePath", "ObjectProperties", "download", "iter_download",
    "upload", "fault_message", "is_fault", "to_vic_error", "start_program", "retrieve", "retrieve_one",
    "retrieve_view", "retry_on_conflict", "wait_for_task", "option_dict", "option_values",
]
