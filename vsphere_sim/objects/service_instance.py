"""ServiceInstance and SessionManager: the bootstrap that SmartConnect walks."""
from __future__ import annotations

from pyVmomi import vim

from ..sessions import now
from .base import ManagedObjectImpl

API_VERSION = "8.0.3.0"
BUILD = "24022515"
INSTANCE_UUID = "5a1c9b7e-6f1d-4c0e-9d6b-7a0f3e2c1b01"

# ServiceContent field -> the fixed moid vCenter gives that manager
CONTENT_MANAGERS = {
    "rootFolder": "group-d1",
    "propertyCollector": "propertyCollector",
    "viewManager": "ViewManager",
    "setting": "VpxSettings",
    "sessionManager": "SessionManager",
    "authorizationManager": "AuthorizationManager",
    "searchIndex": "SearchIndex",
    "fileManager": "FileManager",
    "datastoreNamespaceManager": "DatastoreNamespaceManager",
    "virtualDiskManager": "VirtualDiskManager",
    "taskManager": "TaskManager",
    "eventManager": "EventManager",
    "perfManager": "PerfMgr",
    "guestOperationsManager": "guestOperationsManager",
    "customFieldsManager": "CustomFieldsManager",
}


class ServiceInstanceImpl(ManagedObjectImpl):
    vim_type = vim.ServiceInstance
    persistent = False

    def __init__(self, sim):
        super().__init__(sim, "ServiceInstance")
        self.about = vim.AboutInfo(
            name="VMware vCenter Server", fullName=f"VMware vCenter Server {API_VERSION} build-{BUILD} (vsphere_sim)",
            vendor="VMware, Inc.", version="8.0.3", build=BUILD, localeVersion="INTL", localeBuild="000",
            osType="linux-x64", productLineId="vpx", apiType="VirtualCenter", apiVersion=API_VERSION,
            instanceUuid=INSTANCE_UUID, licenseProductName="VMware VirtualCenter Server", licenseProductVersion="8.0")

    def content(self) -> vim.ServiceInstanceContent:
        registry = self.sim.registry
        refs = {}
        for field, moid in CONTENT_MANAGERS.items():
            obj = registry.find(moid)
            if obj is not None:
                refs[field] = obj.ref
        return vim.ServiceInstanceContent(about=self.about, **refs)

    def prop_content(self):
        return self.content()

    def prop_serverClock(self):
        return now()

    def prop_capability(self):
        return vim.Capability(provisioningSupported=True, multiHostSupported=True, userShellAccessSupported=False,
                              supportedEVCMode=[], networkBackupAndRestoreSupported=False)

    def RetrieveServiceContent(self, ctx):
        return self.content()

    def CurrentTime(self, ctx):
        return now()


class SessionManagerImpl(ManagedObjectImpl):
    vim_type = vim.SessionManager
    persistent = False

    def __init__(self, sim):
        super().__init__(sim, "SessionManager")
        self.init_props(supportedLocaleList=["en"], defaultLocale="en", messageLocaleList=["en"], message=None)

    def _user_session(self, session) -> vim.UserSession:
        return vim.UserSession(key=session.key, userName=session.user, fullName=session.user,
                               loginTime=session.login_time, lastActiveTime=session.last_active, locale="en",
                               messageLocale="en", extensionSession=False, ipAddress="127.0.0.1",
                               userAgent="", callCount=0)

    def prop_currentSession(self):
        ctx = self.sim.current
        session = ctx.session if ctx is not None else None
        return self._user_session(session) if session is not None and session.authenticated else None

    def prop_sessionList(self):
        return vim.UserSession.Array([self._user_session(s) for s in self.sim.sessions.authenticated()])

    def Login(self, ctx, userName, password, locale=None):
        if userName != self.sim.user or password != self.sim.password:
            raise vim.fault.InvalidLogin(msg="Cannot complete login due to an incorrect user name or password.")
        session = ctx.session
        session.user = userName
        session.authenticated = True
        session.login_time = now()
        return self._user_session(session)

    def Logout(self, ctx):
        self.sim.end_session(ctx.session)

    def SessionIsActive(self, ctx, sessionID, userName):
        session = self.sim.sessions.get(sessionID)
        return bool(session and session.authenticated and session.user == userName)

    def TerminateSession(self, ctx, sessionId):
        for key in sessionId:
            session = self.sim.sessions.get(key)
            if session is None:
                raise vim.fault.NotFound(msg=f"Session {key} not found")
            self.sim.end_session(session)
