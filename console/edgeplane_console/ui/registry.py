"""`/deviceservices` and `/provisionwatchers`: list, add, edit (YAML), delete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui

from edgeplane_common.clients.gateway import GatewayClient
from edgeplane_common.errors import EdgeError
from edgeplane_console.application.positions import locate
from edgeplane_console.application.state import ConsoleState
from edgeplane_console.ui.auth import ConsoleAuth, Viewer
from edgeplane_console.ui.common import attempt, down_banner, frame, in_words, parse_document, testid, to_yaml

_STORED_ONLY = ("id", "created", "modified", "apiVersion")


@dataclass
class Entities:
    path: str
    title: str
    kind: str
    action: str
    """Prefix of its console actions (`deviceservice` for deviceservice.add/edit/delete)."""
    columns: tuple[tuple[str, Callable[[dict[str, Any]], Any]], ...]
    list: Callable[[GatewayClient], Awaitable[list[dict[str, Any]]]]
    add: Callable[[GatewayClient, dict[str, Any]], Awaitable[None]]
    update: Callable[[GatewayClient, dict[str, Any]], Awaitable[None]]
    delete: Callable[[GatewayClient, str], Awaitable[None]]
    template: dict[str, Any]


def entity_page(state: ConsoleState, auth: ConsoleAuth, spec: Entities) -> None:
    @ui.page(spec.path)
    async def page() -> RedirectResponse | None:
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame(spec.title, auth, me)
        client = me.client
        can_edit, can_delete = me.can(f"{spec.action}.edit"), me.can(f"{spec.action}.delete")
        box = ui.column().classes("w-full")

        async def load() -> None:
            box.clear()
            with box:
                try:
                    items = await spec.list(client)
                except EdgeError as err:
                    down_banner(f"{spec.title.lower()} cannot be listed: {in_words(err)}")
                    return
                if not items:
                    ui.label(f"no {spec.title.lower()} yet").classes("ep-muted")
                for item in items:
                    with ui.row().classes("items-center gap-4"):
                        for label, get in spec.columns:
                            ui.label(f"{label}: {get(item)}").classes("w-64")
                        ui.button("Edit" if can_edit else "View", on_click=lambda i=item: editor(i)).props(
                            "outline dense"
                        )
                        if can_delete:
                            ui.button("Delete", on_click=lambda n=item["name"]: delete(n)).props(
                                "outline dense color=negative"
                            )

        async def delete(name: str) -> None:
            if await attempt(spec.delete(client, name), f"{spec.kind} {name} deleted"):
                state.refresh_soon()
                await load()

        def editor(item: dict[str, Any] | None) -> None:
            existing = item is not None
            writable = can_edit if existing else me.can(f"{spec.action}.add")
            shown = {k: v for k, v in (item or spec.template).items() if k not in _STORED_ONLY}
            with ui.dialog() as dialog, ui.card().classes("w-[44rem]"):
                ui.label(f"{'Edit' if existing else 'Add'} {spec.kind} (YAML)").classes("text-xl")
                text = ui.codemirror(to_yaml(shown), language="YAML").classes("w-full h-96")
                error = testid(ui.label().classes("ep-error"), "entity-error")

                async def save() -> None:
                    try:
                        body = parse_document(text.value) or {}
                    except ValueError as err:
                        error.text = str(err)
                        return
                    if not isinstance(body, dict):
                        error.text = f"a {spec.kind} is a YAML mapping (name: ..., ...)"
                        return
                    try:
                        await (spec.update(client, body) if existing else spec.add(client, body))
                    except EdgeError as err:
                        where = locate(text.value, err.message)
                        error.text = f"line {where[0]}: {err.message}" if where else in_words(err)
                        return
                    ui.notify(f"{spec.kind} {body.get('name')} saved", type="positive")
                    dialog.close()
                    state.refresh_soon()
                    await load()

                with ui.row():
                    if writable:
                        ui.button("Save", on_click=save)
                    ui.button("Cancel" if writable else "Close", on_click=dialog.close).props("flat")
            dialog.open()

        await load()
        if me.can(f"{spec.action}.add"):
            testid(ui.button(f"Add {spec.kind}", on_click=lambda: editor(None)), "add")
        return None


def register(state: ConsoleState, auth: ConsoleAuth) -> None:
    entity_page(
        state,
        auth,
        Entities(
            path="/deviceservices",
            title="Device services",
            kind="device service",
            action="deviceservice",
            columns=(("name", lambda s: s["name"]), ("address", lambda s: s.get("baseAddress", "")),
                     ("admin", lambda s: s.get("adminState", ""))),
            list=GatewayClient.device_services,
            add=GatewayClient.add_device_service,
            update=GatewayClient.update_device_service,
            delete=GatewayClient.delete_device_service,
            template={"name": "device-new", "baseAddress": "http://127.0.0.1:59999", "adminState": "UNLOCKED",
                      "labels": []},
        ),
    )  # fmt: skip
    entity_page(
        state,
        auth,
        Entities(
            path="/provisionwatchers",
            title="Provision watchers",
            kind="provision watcher",
            action="provisionwatcher",
            columns=(
                ("name", lambda w: w["name"]),
                ("service", lambda w: w.get("serviceName", "")),
                ("profile", lambda w: (w.get("discoveredDevice") or {}).get("profileName", "")),
            ),
            list=GatewayClient.provision_watchers,
            add=GatewayClient.add_provision_watcher,
            update=GatewayClient.update_provision_watcher,
            delete=GatewayClient.delete_provision_watcher,
            template={
                "name": "watcher-new",
                "serviceName": "device-modbus",
                "identifiers": {"Address": "127\\.0\\.0\\.1"},
                "adminState": "UNLOCKED",
                "discoveredDevice": {"profileName": "Edgeplane-Demo-PLC", "adminState": "UNLOCKED", "protocols": {}},
            },
        ),
    )
