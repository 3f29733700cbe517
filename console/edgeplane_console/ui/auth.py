"""Secure mode's login for the console: `/login`, who is looking at a page, logout.

A user's token stays on the server: the browser holds only NiceGUI's signed session cookie (a random id),
and the console keeps, per id and in memory, the token and a gateway client view that sends it. Every REST
call a page makes for the user goes with the user's token, so the services apply the user's role; the
background status poll keeps the console's own (service) token. Open mode: no login, every page as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from fastapi.responses import RedirectResponse
from nicegui import app, ui

from edgeplane_common.auth.claims import issued_principal
from edgeplane_common.clients.gateway import GatewayClient
from edgeplane_common.errors import EdgeError, ServiceUnavailable
from edgeplane_console.application.access import Access, Capabilities
from edgeplane_console.application.state import ConsoleState

LOGIN_PATH = "/login"
REASONS = {
    "expired": "Your login has expired: log in again.",
    "logout": "You are logged out.",
    "ended": "Your login is no longer valid: log in again.",
}
EXPIRY_CHECK_S = 5.0


@dataclass
class Viewer:
    """Who looks at a page, with the client to act for them and what their role allows."""

    client: GatewayClient
    can: Capabilities
    username: str = ""
    role: str = ""
    expires: float = 0.0
    """When the token expires (epoch seconds); 0 in open mode."""
    session: str = field(default="", repr=False)

    @property
    def secure(self) -> bool:
        return bool(self.session)

    def expired(self, now: float | None = None) -> bool:
        return self.secure and (now if now is not None else time.time()) >= self.expires


class Sessions:
    """Logged-in users by browser session id, in memory (a restart logs everyone out)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Viewer] = {}

    def get(self, session: str) -> Viewer | None:
        return self._by_id.get(session)

    def put(self, viewer: Viewer) -> None:
        now = time.time()
        for stale in [s for s, v in self._by_id.items() if v.expired(now)]:
            del self._by_id[stale]
        self._by_id[viewer.session] = viewer

    def drop(self, session: str) -> None:
        self._by_id.pop(session, None)

    def __len__(self) -> int:
        return len(self._by_id)


def safe_next(target: str) -> str:
    """Where to go after the login: a path of this console only (never another site)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def login_url(next_path: str = "/", reason: str = "") -> str:
    query = {"next": safe_next(next_path)} | ({"reason": reason} if reason else {})
    return f"{LOGIN_PATH}?{urlencode(query)}"


def login_error(err: EdgeError) -> str:
    """A failed login in words."""
    if isinstance(err, ServiceUnavailable):
        return f"core-metadata cannot be reached, so nobody can log in now ({err.message})"
    if err.status_code == 401:
        return "wrong user name or password"
    if err.status_code == 429:
        return f"too many failed logins: wait a few minutes ({err.message})"
    return err.message


class ConsoleAuth:
    def __init__(self, state: ConsoleState, *, enabled: bool) -> None:
        """`enabled`: secure mode, every page behind the login; else open mode."""
        self.state = state
        self.enabled = enabled
        self.access = Access()
        self.sessions = Sessions()

    async def viewer(self) -> Viewer | RedirectResponse:
        """The viewer of the page being built, or the redirect to the login page."""
        if not self.enabled:
            return Viewer(self.state.client, Capabilities.everything())
        session = str(app.storage.browser["id"])
        here = ui.context.client.request.url
        path = here.path + (f"?{here.query}" if here.query else "")
        viewer = self.sessions.get(session)
        if viewer is None:
            return RedirectResponse(login_url(path), status_code=303)
        if viewer.expired():
            self.sessions.drop(session)
            return RedirectResponse(login_url(path, "expired"), status_code=303)
        await self.access.load(
            lambda service: viewer.client.get_at(viewer.client.endpoints.url(service), "/openapi.json")
        )
        viewer.can = self.access.capabilities(viewer.role)
        return viewer

    async def login(self, session: str, username: str, password: str) -> Viewer:
        assert self.enabled
        token = await self.state.client.login(username, password)
        # Straight from core-metadata over the console's own connection: its claims say who logged in and
        # with which role (what the page draws); every service verifies it on each call made with it.
        principal = issued_principal(token)
        viewer = Viewer(
            self.state.client.as_user(token),
            Capabilities(frozenset()),
            username=principal.subject,
            role=principal.role,
            expires=float(principal.expires),
            session=session,
        )
        self.sessions.put(viewer)
        return viewer

    def watch(self, viewer: Viewer) -> None:
        """On an open page: back to the login page when the login expires or ends (logout in another tab)."""
        if not viewer.secure:
            return

        def check() -> None:
            if viewer.expired():
                self.sessions.drop(viewer.session)
                ui.navigate.to(login_url(_current_path(), "expired"))
            elif self.sessions.get(viewer.session) is not viewer:
                ui.navigate.to(login_url(_current_path(), "ended"))

        ui.timer(EXPIRY_CHECK_S, check)

    def logout(self, viewer: Viewer) -> None:
        self.sessions.drop(viewer.session)
        ui.navigate.to(login_url("/", "logout"))

    def register(self) -> None:
        @ui.page(LOGIN_PATH)
        async def login_page(next: str = "/", reason: str = "") -> RedirectResponse | None:
            if not self.enabled:
                return RedirectResponse(safe_next(next), status_code=303)
            session = str(app.storage.browser["id"])
            ui.page_title("Log in - edgeplane")
            with ui.card().classes("absolute-center w-96"):
                ui.label("edgeplane: log in").classes("text-xl")
                if reason in REASONS:
                    ui.label(REASONS[reason]).props('data-testid="login-reason"')
                username = ui.input("user name").props('data-testid="login-username" autofocus').classes("w-full")
                password = ui.input("password", password=True).props('data-testid="login-password"').classes("w-full")
                error = ui.label().classes("text-red-700").props('data-testid="login-error"')

                async def submit() -> None:
                    error.text = ""
                    if not username.value or not password.value:
                        error.text = "give your user name and password"
                        return
                    button.disable()
                    try:
                        await self.login(session, username.value, password.value)
                    except EdgeError as err:
                        error.text = login_error(err)
                        password.value = ""
                        return
                    finally:
                        button.enable()
                    ui.navigate.to(safe_next(next))

                password.on("keydown.enter", submit)
                button = ui.button("Log in", on_click=submit).props('data-testid="login-submit"')
            return None


def _current_path() -> str:
    url = ui.context.client.request.url
    return url.path


__all__ = ["ConsoleAuth", "Sessions", "Viewer", "login_error", "login_url", "safe_next"]
