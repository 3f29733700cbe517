"""`/profiles` and `/profiles/{name}`: list, upload a YAML file, edit in a YAML editor whose save shows
core-metadata's error at its line, download as YAML, delete."""

from __future__ import annotations

from typing import Any

import yaml
from fastapi.responses import RedirectResponse
from nicegui import events, ui

from edgeplane_common.errors import EdgeError
from edgeplane_console.application.positions import locate
from edgeplane_console.application.state import ConsoleState
from edgeplane_console.ui.auth import ConsoleAuth, Viewer
from edgeplane_console.ui.common import attempt, down_banner, fail, frame, in_words, testid, to_yaml

# Fields core-metadata adds to a stored profile: not part of what a person edits.
_STORED_ONLY = ("id", "created", "modified", "apiVersion", "linkedDeviceCount")


def profile_yaml(profile: dict[str, Any]) -> str:
    return to_yaml({k: v for k, v in profile.items() if k not in _STORED_ONLY})


def register(state: ConsoleState, auth: ConsoleAuth) -> None:
    async def page(selected: str | None) -> RedirectResponse | None:
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame("Profiles", auth, me)
        client, can = me.client, me.can
        table_box = ui.column().classes("w-full")
        known: set[str] = set()

        async def load() -> None:
            table_box.clear()
            with table_box:
                try:
                    profiles = await client.profiles()
                except EdgeError as err:
                    down_banner(f"profiles cannot be listed: {in_words(err)}")
                    return
                known.clear()
                known.update(p["name"] for p in profiles)
                for p in profiles:
                    with ui.row().classes("items-center gap-4"):
                        ui.label(p["name"]).classes("font-bold w-72")
                        ui.label(f"{p.get('manufacturer', '')} {p.get('model', '')}").classes("w-48")
                        ui.label(f"{len(p.get('deviceResources') or [])} resources").classes("w-32")
                        ui.button(
                            "Edit" if can("profile.replace") else "View", on_click=lambda n=p["name"]: open_profile(n)
                        ).props("outline dense")
                        ui.button("Download", on_click=lambda n=p["name"]: download(n)).props("outline dense")
                        if can("profile.delete"):
                            ui.button("Delete", on_click=lambda n=p["name"]: delete(n)).props(
                                "outline dense color=negative"
                            )

        async def open_profile(name: str) -> None:
            try:
                profile = await client.profile(name)
            except EdgeError as err:
                fail(err)
                return
            show(profile_yaml(profile), name)

        async def download(name: str) -> None:
            try:
                profile = await client.profile(name)
            except EdgeError as err:
                fail(err)
                return
            ui.download.content(profile_yaml(profile), f"{name}.yaml", "application/x-yaml")

        async def delete(name: str) -> None:
            if await attempt(client.delete_profile(name), f"profile {name} deleted"):
                await load()

        await load()

        async def on_upload(e: events.UploadEventArguments) -> None:
            content = await e.file.read()
            text = content.decode("utf-8", errors="replace")
            try:
                await client.upload_profile(content, filename=e.file.name)
            except EdgeError as err:
                show(text, None)
                mark_error(text, err.message)
                return
            ui.notify(f"{e.file.name} uploaded", type="positive")
            clear_error()
            await load()

        if can("profile.upload"):
            ui.label("Upload a profile (YAML)").classes("text-xl")
            testid(
                ui.upload(on_upload=on_upload, auto_upload=True, label="profile YAML").props("accept=.yaml,.yml,.json"),
                "upload",
            )

        ui.label("Editor").classes("text-xl")
        editing = testid(ui.label("new profile").classes("ep-muted"), "editing")
        editor = testid(ui.codemirror("", language="YAML").classes("w-full h-96"), "editor")
        error = testid(ui.label().classes("ep-error"), "profile-error")

        def show(text: str, name: str | None) -> None:
            editor.value = text
            editing.text = f"editing {name}" if name else "new profile"
            clear_error()

        def clear_error() -> None:
            error.text = ""
            editor.decorations = []
            editor.line_tooltips = {}

        def mark_error(text: str, message: str) -> None:
            position = locate(text, message)
            if position is None:
                error.text = message
                return
            line, column = position
            error.text = f"line {line}, column {column}: {message}"
            editor.decorations = [{"kind": "line", "line": line, "class": "ep-error-line"}]
            editor.line_tooltips = {line: message}
            editor.reveal_line(line)

        async def save() -> None:
            text = editor.value
            try:
                name = (yaml.safe_load(text) or {}).get("name")
            except (yaml.YAMLError, AttributeError):
                name = None
            exists = isinstance(name, str) and name in known
            try:
                await client.upload_profile(text.encode(), replace=exists, filename=f"{name or 'profile'}.yaml")
            except EdgeError as err:
                mark_error(text, err.message)
                return
            clear_error()
            ui.notify(f"profile {name} {'saved' if exists else 'added'}", type="positive")
            editing.text = f"editing {name}"
            await load()

        if can("profile.upload") or can("profile.replace"):
            with ui.row():
                testid(ui.button("Save", on_click=save), "save-profile")
                ui.button("New", on_click=lambda: show("", None)).props("flat")

        if selected:
            await open_profile(selected)
        return None

    @ui.page("/profiles")
    async def profiles_page() -> RedirectResponse | None:
        return await page(None)

    @ui.page("/profiles/{name}")
    async def profile_page(name: str) -> RedirectResponse | None:
        return await page(name)
