"""`python -m bench._profiled_sim OUT.txt [vsphere-sim args]`: the sim under pyinstrument, for bench/profile.py.

The sim serves each connection on a thread of its own (ThreadingHTTPServer), so every such thread runs under a
profiler of its own; when the sim stops, the sessions of the threads that ended (clients disconnect first) are
combined into one and written as text (wall time per frame, all threads added up, idle waits included).
"""
from __future__ import annotations

import socketserver
import sys
import threading
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.session import Session

_sessions: list[Session] = []
_lock = threading.Lock()
_original = socketserver.ThreadingMixIn.process_request_thread


def _profiled(self, request, client_address):
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    try:
        _original(self, request, client_address)
    finally:
        session = profiler.stop()
        with _lock:
            _sessions.append(session)


def main() -> int:
    out = Path(sys.argv[1])
    socketserver.ThreadingMixIn.process_request_thread = _profiled
    from vsphere_sim.cli import main as sim_main
    code = sim_main(sys.argv[2:])
    with _lock:
        sessions = list(_sessions)
    if sessions:
        combined = sessions[0]
        for session in sessions[1:]:
            combined = Session.combine(combined, session)
        from pyinstrument.renderers import ConsoleRenderer
        out.write_text(ConsoleRenderer(unicode=True, color=False, show_all=False, short_mode=False,
                                       timeline=False).render(combined))
    return code


if __name__ == "__main__":
    sys.exit(main())
