"""Sessions keyed by the `vmware_soap_session` cookie, as vCenter issues them.

A cookie is handed out on the first response; `Login` authenticates that session. Session-scoped objects (property
collectors, filters, views) are destroyed with the session at `Logout`.
"""
from __future__ import annotations

import datetime
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field

COOKIE_NAME = "vmware_soap_session"
_COOKIE_RE = re.compile(COOKIE_NAME + r'="?([^";,\s]+)')


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Session:
    key: str
    user: str | None = None
    authenticated: bool = False
    login_time: datetime.datetime | None = None
    last_active: datetime.datetime = field(default_factory=now)
    owned: list = field(default_factory=list)  # morefs of session-scoped objects

    def touch(self):
        self.last_active = now()


class SessionTable:
    def __init__(self):
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def for_cookie(self, cookie_header: str | None) -> tuple[Session, str | None]:
        """The session a request's Cookie header names, or a new one plus the Set-Cookie value to send."""
        key = None
        if cookie_header:
            # a regex, not SimpleCookie: this runs on every call and SimpleCookie costs ~50 us
            match = _COOKIE_RE.search(cookie_header)
            key = match.group(1) if match else None
        with self._lock:
            session = self._sessions.get(key) if key else None
            if session is not None:
                return session, None
            key = str(uuid.UUID(bytes=secrets.token_bytes(16)))
            session = self._sessions[key] = Session(key)
        return session, f'{COOKIE_NAME}="{key}"; Path=/; HttpOnly; Secure;'

    def get(self, key: str) -> Session | None:
        return self._sessions.get(key)

    def authenticated(self) -> list[Session]:
        with self._lock:
            return [s for s in self._sessions.values() if s.authenticated]

    def end(self, session: Session):
        with self._lock:
            self._sessions.pop(session.key, None)
        session.authenticated = False

    def clear(self):
        with self._lock:
            self._sessions.clear()
