"""Fault rules for the control API: make a method fail, or slow it down, on purpose.

A rule matches a method (WSDL name, or `*`) and optionally a moref; it fires with a probability, a limited number of
times, and either raises a vSphere fault (by pyVmomi class name, e.g. `vim.fault.ConcurrentAccess`) or delays the call.
"""
from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass, field

from pyVmomi import VmomiSupport, vmodl


@dataclass
class FaultRule:
    method: str = "*"
    object: str | None = None
    probability: float = 1.0
    count: int | None = None  # fires this many times then retires; None = forever
    delay: float = 0.0
    # delay only the task's work (the call returns a queued/running task at once) instead of the whole call
    delay_task_only: bool = False
    fault: str | None = None
    message: str | None = None
    fields: dict = field(default_factory=dict)
    id: int = 0
    fired: int = 0

    def make_fault(self, this) -> vmodl.MethodFault:
        cls = resolve_fault_class(self.fault)
        fault = cls(**self.fields)
        fault.msg = self.message or f"{self.fault} injected by a vsphere_sim fault rule"
        return fault

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "method", "object", "probability", "count", "delay",
                                               "delay_task_only", "fault", "message", "fields", "fired")}


def resolve_fault_class(name: str):
    dotted = name.removeprefix("vim.").removeprefix("vmodl.")
    for candidate in (name, "vim." + dotted, "vim.fault." + dotted.split(".")[-1],
                      "vmodl.fault." + dotted.split(".")[-1]):
        try:
            cls = VmomiSupport.GetVmodlType(candidate)
        except (AttributeError, KeyError):
            continue
        if isinstance(cls, type) and issubclass(cls, vmodl.MethodFault):
            return cls
    raise ValueError(f"unknown fault type {name}")


class FaultRules:
    def __init__(self, seed: int | None = None):
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        if rule.fault is not None:
            resolve_fault_class(rule.fault)  # fail early on a typo
        with self._lock:
            rule.id = next(self._ids)
            self._rules.append(rule)
        return rule

    def clear(self):
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [r.as_dict() for r in self._rules]

    def match(self, method: str, moid: str) -> FaultRule | None:
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.method not in ("*", method) or (rule.object and rule.object != moid):
                    continue
                if self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                if rule.count is not None and rule.fired >= rule.count:
                    self._rules.remove(rule)
                return rule
        return None
