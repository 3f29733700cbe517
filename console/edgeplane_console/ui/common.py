"""Layout and helpers shared by the pages."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

import orjson
import yaml
from nicegui import ui

from edgeplane_common.errors import EdgeError
from edgeplane_console.ui.auth import ConsoleAuth, Viewer

NAV = (
    ("Overview", "/"),
    ("Devices", "/devices"),
    ("Profiles", "/profiles"),
    ("Device services", "/deviceservices"),
    ("Provision watchers", "/provisionwatchers"),
    ("Rules", "/rules"),
    ("Exports", "/exports"),
)

CSS = """
.ep-error-line { background: #ffe0e0; }
.ep-error { color: #b00020; white-space: pre-wrap; }
.ep-muted { color: #666; }
"""


def frame(title: str, auth: ConsoleAuth, viewer: Viewer) -> None:
    """Header with the navigation (and in secure mode who is logged in, and logout), and the page title."""
    ui.add_css(CSS)
    ui.page_title(f"{title} - edgeplane")
    with ui.header().classes("items-center gap-4 bg-slate-800"):
        ui.label("edgeplane").classes("text-lg font-bold")
        for label, path in NAV:
            ui.link(label, path).classes("text-white no-underline")
        if viewer.secure:
            ui.space()
            testid(ui.label(f"{viewer.username} ({viewer.role})"), "whoami")
            testid(ui.button("Log out", on_click=lambda: auth.logout(viewer)).props("flat color=white"), "logout")
    auth.watch(viewer)
    ui.label(title).classes("text-2xl").props('data-testid="page-title"')


def testid(element: Any, name: str) -> Any:
    return element.props(f'data-testid="{name}"')


def in_words(err: EdgeError) -> str:
    """An API's error as the user's problem: its message, and for a refused login or role what it means."""
    if err.status_code == 401:
        return f"not logged in, or the login has expired (log in again): {err.message}"
    if err.status_code == 403:
        return f"your role does not allow this: {err.message}"
    return err.message


def fail(err: EdgeError, what: str = "") -> None:
    """An API's error as the user's problem: its message, never a trace."""
    text = in_words(err)
    ui.notify(f"{what}: {text}" if what else text, type="negative", multi_line=True, timeout=8000)


async def attempt(call: Awaitable[object], done: str = "", what: str = "") -> bool:
    """Run an API call that changes something; notify its outcome; whether it succeeded."""
    try:
        await call
    except EdgeError as err:
        fail(err, what)
        return False
    if done:
        ui.notify(done, type="positive")
    return True


def down_banner(message: str) -> None:
    testid(ui.label(message).classes("ep-error"), "unavailable")


def when(ms: int | float | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000))


def when_ns(ns: int | None) -> str:
    return when(ns / 1_000_000 if ns else None)


def to_yaml(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def parse_document(text: str) -> Any:
    """YAML or JSON (a YAML subset) typed by the user; EdgeError-free: ValueError with the position."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(str(err)) from None


def json_text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
