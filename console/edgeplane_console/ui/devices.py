"""`/devices` (table, add) and `/devices/{name}`: live values and charts from the bus, history from core-data
(one query per chart view), read/write commands checked against the profile, lock/unlock, edit, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui

from edgeplane_common.clients.gateway import GatewayClient, check_write
from edgeplane_common.errors import EdgeError
from edgeplane_console.application.live import as_number
from edgeplane_console.application.state import ConsoleState
from edgeplane_console.ui.auth import ConsoleAuth, Viewer
from edgeplane_console.ui.common import (
    attempt,
    down_banner,
    fail,
    frame,
    in_words,
    parse_document,
    testid,
    to_yaml,
    when,
)

RANGES = {"5 minutes": 5, "15 minutes": 15, "1 hour": 60, "6 hours": 360, "24 hours": 1440}
DEFAULT_CHARTS = 5
NAME_LINK = (
    '<q-td :props="props"><a :href="\'/devices/\' + encodeURIComponent(props.value)">{{ props.value }}</a></q-td>'
)


def chart_options(title: str, units: str, points: list[list[float]]) -> dict[str, Any]:
    return {
        "animation": False,
        "title": {"text": f"{title} ({units})" if units else title, "textStyle": {"fontSize": 13}},
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 50, "right": 10, "top": 30, "bottom": 25},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True},
        "series": [{"type": "line", "showSymbol": False, "data": points}],
    }


def register(state: ConsoleState, auth: ConsoleAuth) -> None:
    @ui.page("/devices")
    async def devices_page() -> RedirectResponse | None:
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame("Devices", auth, me)
        client = me.client
        table_box = ui.column().classes("w-full")

        async def load() -> None:
            table_box.clear()
            with table_box:
                try:
                    devices = await client.devices()
                except EdgeError as err:
                    down_banner(f"devices cannot be listed: {in_words(err)}")
                    return
                rows = [
                    {
                        "name": d["name"],
                        "state": d.get("operatingState", ""),
                        "admin": d.get("adminState", ""),
                        "service": d.get("serviceName", ""),
                        "profile": d.get("profileName", ""),
                        "last reading": when(state.hub.last_event_ms.get(d["name"])),
                    }
                    for d in devices
                ]
                columns = (
                    [{"name": k, "label": k, "field": k, "align": "left", "sortable": True} for k in rows[0]]
                    if rows
                    else []
                )
                table = testid(ui.table(columns=columns, rows=rows, row_key="name"), "devices")
                table.add_slot("body-cell-name", NAME_LINK)
                if not rows:
                    ui.label("no devices yet").classes("ep-muted")

        await load()
        if me.can("device.add"):
            ui.button("Add device", on_click=lambda: add_dialog(client, load)).props('data-testid="add-device"')
        ui.timer(5.0, load)
        return None

    async def add_dialog(client: GatewayClient, reload: Any) -> None:
        try:
            services = [s["name"] for s in await client.device_services()]
            profiles = [p["name"] for p in await client.profiles()]
        except EdgeError as err:
            fail(err, "core-metadata")
            return
        with ui.dialog() as dialog, ui.card().classes("w-[40rem]"):
            ui.label("Add device").classes("text-xl")
            name = ui.input("name")
            service = ui.select(services, label="device service", value=services[0] if services else None)
            profile = ui.select(profiles, label="profile", value=profiles[0] if profiles else None)
            description = ui.input("description")
            ui.label("protocols (YAML), e.g. modbus-tcp: {Address: 127.0.0.1, Port: '502', UnitID: '1'}")
            protocols = ui.codemirror(
                "modbus-tcp:\n  Address: 127.0.0.1\n  Port: '5020'\n  UnitID: '1'\n", language="YAML"
            ).classes("h-32")
            error = ui.label().classes("ep-error")

            async def save() -> None:
                try:
                    protocol_data = parse_document(protocols.value) or {}
                except ValueError as err:
                    error.text = f"protocols: {err}"
                    return
                body = {
                    "name": name.value,
                    "serviceName": service.value,
                    "profileName": profile.value,
                    "description": description.value,
                    "adminState": "UNLOCKED",
                    "operatingState": "UP",
                    "protocols": protocol_data,
                }
                try:
                    await client.add_device(body)
                except EdgeError as err:
                    error.text = in_words(err)
                    return
                ui.notify(f"device {name.value} added", type="positive")
                dialog.close()
                state.refresh_soon()
                await reload()

            with ui.row():
                ui.button("Add", on_click=save)
                ui.button("Cancel", on_click=dialog.close).props("flat")
        dialog.open()

    @ui.page("/devices/{name}")
    async def device_page(name: str, charts: str | None = None) -> RedirectResponse | None:
        """`?charts=A,B` picks the live charts (a link to share); default: the first resources with live values."""
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame(f"Device {name}", auth, me)
        client, can = me.client, me.can
        try:
            device = await client.device(name)
        except EdgeError as err:
            down_banner(in_words(err))
            return None
        try:
            profile: dict[str, Any] | None = await client.profile(device["profileName"])
        except EdgeError as err:
            profile = None
            down_banner(f"profile {device['profileName']}: {err.message}")
        resources = {r["name"]: r for r in (profile or {}).get("deviceResources") or []}

        # -- state, lock/unlock, edit, delete
        @ui.refreshable
        def header() -> None:
            with ui.row().classes("items-center gap-6"):
                testid(ui.label(f"state: {device.get('operatingState')}"), "operating-state")
                testid(ui.label(f"admin: {device.get('adminState')}"), "admin-state")
                ui.label(f"service: {device.get('serviceName')}")
                ui.label(f"profile: {device.get('profileName')}")
                locked = device.get("adminState") == "LOCKED"
                if can("device.edit"):
                    testid(ui.button("Unlock" if locked else "Lock", on_click=lambda: set_lock(not locked)), "lock")
                    ui.button("Edit", on_click=edit).props("outline")
                if can("device.delete"):
                    ui.button("Delete", on_click=delete).props("outline color=negative")

        async def set_lock(lock: bool) -> None:
            state_name = "LOCKED" if lock else "UNLOCKED"
            await attempt(client.set_admin_state(name, state_name), f"{name} {state_name.lower()}")
            try:
                device.update(await client.device(name))
            except EdgeError as err:
                fail(err)
            header.refresh()

        async def edit() -> None:
            editable = {
                k: device.get(k)
                for k in ("description", "labels", "profileName", "serviceName", "protocols", "autoEvents")
            }
            with ui.dialog() as dialog, ui.card().classes("w-[44rem]"):
                ui.label(f"Edit {name} (YAML; fields left out are kept)").classes("text-xl")
                editor = ui.codemirror(to_yaml(editable), language="YAML").classes("h-80 w-full")
                error = ui.label().classes("ep-error")

                async def save() -> None:
                    try:
                        patch = parse_document(editor.value) or {}
                    except ValueError as err:
                        error.text = str(err)
                        return
                    try:
                        await client.update_device({**patch, "name": name})
                        device.update(await client.device(name))
                    except EdgeError as err:
                        error.text = in_words(err)
                        return
                    ui.notify("saved", type="positive")
                    dialog.close()
                    header.refresh()

                with ui.row():
                    ui.button("Save", on_click=save)
                    ui.button("Cancel", on_click=dialog.close).props("flat")
            dialog.open()

        async def delete() -> None:
            with ui.dialog() as dialog, ui.card():
                ui.label(f"Delete device {name}?")

                async def really() -> None:
                    if await attempt(client.delete_device(name), f"{name} deleted"):
                        dialog.close()
                        state.refresh_soon()
                        ui.navigate.to("/devices")

                with ui.row():
                    ui.button("Delete", on_click=really).props("color=negative")
                    ui.button("Cancel", on_click=dialog.close).props("flat")
            dialog.open()

        header()

        # -- live values
        ui.label("Live values (from the bus)").classes("text-xl")
        columns = [{"name": k, "label": k, "field": k, "align": "left"} for k in ("resource", "value", "units", "time")]
        live_table = testid(ui.table(columns=columns, rows=[], row_key="resource"), "live-values")

        def live_rows() -> list[dict[str, Any]]:
            latest = state.hub.latest(name)
            return [
                {"resource": r, "value": v.value, "units": v.units or _units(resources.get(r)), "time": when(v.at_ms)}
                for r, v in sorted(latest.items())
            ]

        # -- live charts: the chosen resources, new points pushed at most every chart_interval
        numeric = [
            r for r, res in resources.items()
            if as_number(res.get("properties", {}).get("valueType", ""), "0") is not None
            and "R" in res.get("properties", {}).get("readWrite", "R")
        ]  # fmt: skip
        asked = [r for r in (charts or "").split(",") if r in numeric]
        live_now = asked or [r for r in state.hub.resources(name) if r in numeric] or numeric
        chosen = ui.select(numeric, multiple=True, value=live_now[:DEFAULT_CHARTS], label="live charts").classes(
            "w-full"
        )
        chart_box = ui.row().classes("w-full")
        shown: dict[str, tuple[Any, list[int]]] = {}

        def build_charts() -> None:
            chart_box.clear()
            shown.clear()
            with chart_box:
                for resource in chosen.value or []:
                    points = state.hub.since(name, resource, 0)
                    chart = ui.echart(
                        chart_options(resource, _units(resources.get(resource)), [[p.at_ms, p.value] for p in points])
                    )
                    testid(chart.classes("w-[30rem] h-56"), f"chart-{resource}")
                    shown[resource] = (chart, [points[-1].seq if points else 0, len(points)])

        chosen.on_value_change(lambda _: build_charts())
        build_charts()

        def tick() -> None:
            live_table.rows = live_rows()
            live_table.update()
            for resource, (chart, cursor) in shown.items():
                new = state.hub.since(name, resource, cursor[0])
                if not new:
                    continue
                data = chart.options["series"][0]["data"]
                data.extend([p.at_ms, p.value] for p in new)
                del data[: max(0, len(data) - state.hub.keep)]
                cursor[0] = new[-1].seq
                cursor[1] = len(data)
                chart.update()
                # For tests and the benchmark: how many points are drawn, and the newest one's time.
                chart.props(f'data-points="{len(data)}" data-last="{new[-1].at_ms}"')

        ui.timer(state.chart_interval, tick)

        # -- history: one core-data query per view
        ui.label("History (core-data)").classes("text-xl")
        with ui.row().classes("items-center"):
            history_resource = ui.select(numeric, value=numeric[0] if numeric else None, label="resource").classes(
                "w-64"
            )
            history_range = ui.select(list(RANGES), value="15 minutes", label="range").classes("w-40")
            history_button = ui.button("Show")
        history_chart = testid(ui.echart(chart_options("history", "", [])).classes("w-full h-64"), "history")
        history_note = ui.label().classes("ep-muted")

        async def show_history() -> None:
            resource = history_resource.value
            if not resource:
                return
            start = datetime.now(UTC) - timedelta(minutes=RANGES[history_range.value])
            try:
                readings = await client.readings(name, resource=resource, start=start, limit=state.history_limit)
            except EdgeError as err:
                history_note.text = f"history not available: {in_words(err)}"
                return
            points = [
                [r["origin"] // 1_000_000, n]
                for r in reversed(readings)
                if (n := as_number(r.get("valueType", ""), r.get("value"))) is not None
            ]
            history_chart.options.update(chart_options(resource, _units(resources.get(resource)), points))
            history_chart.update()
            history_note.text = f"{len(points)} readings" + (
                " (the newest, up to the limit)" if len(readings) >= state.history_limit else ""
            )

        history_button.on_click(show_history)

        # -- commands
        ui.label("Commands").classes("text-xl")
        try:
            commands = await client.device_commands(name)
        except EdgeError as err:
            down_banner(f"commands not available: {in_words(err)}")
            commands = []
        result = testid(ui.label().classes("whitespace-pre-wrap"), "command-result")
        if commands and not (can("command.read") or can("command.write")):
            ui.label(f"your role ({me.role}) may not send commands to the device").classes("ep-muted")
        for command in commands:
            cmd_name = command["name"]
            with ui.card().classes("w-full"), ui.row().classes("items-center gap-4"):
                ui.label(cmd_name).classes("font-bold w-48")
                if command.get("get") and can("command.read"):
                    testid(ui.button("Read", on_click=lambda c=cmd_name: read(c)).props("outline"), f"read-{cmd_name}")
                if command.get("set") and can("command.write"):
                    inputs = {}
                    for param in command.get("parameters") or []:
                        resource = param["resourceName"]
                        inputs[resource] = testid(
                            ui.input(f"{resource} ({param.get('valueType')})").classes("w-48"),
                            f"input-{cmd_name}-{resource}",
                        )
                    testid(ui.button("Write", on_click=lambda c=cmd_name, i=inputs: write(c, i)), f"write-{cmd_name}")

        async def read(command: str) -> None:
            try:
                event = await client.read(name, command)
            except EdgeError as err:
                fail(err, f"read {command}")
                result.text = in_words(err)
                return
            lines = [f"{r['resourceName']} = {r.get('value', '(binary)')}" for r in event.get("readings") or []]
            result.text = f"{command}: " + ("; ".join(lines) or "no readings")

        async def write(command: str, inputs: dict[str, Any]) -> None:
            values = {r: str(i.value) for r, i in inputs.items() if str(i.value or "").strip()}
            if profile is not None:
                try:
                    check_write(profile, name, command, values)
                except EdgeError as err:
                    fail(err)
                    result.text = err.message
                    return
            if await attempt(client.write(name, command, values), f"{command} written"):
                result.text = f"{command}: written " + ", ".join(f"{k}={v}" for k, v in values.items())

        return None


def _units(resource: dict[str, Any] | None) -> str:
    if not resource:
        return ""
    return str(resource.get("properties", {}).get("units") or "")


__all__ = ["register"]
