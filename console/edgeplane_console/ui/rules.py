"""`/rules`: every rule with its status counters and last firings; create/edit with the SQL error shown at
its position; start, stop, delete. `/exports`: per app service its counters and buffer depth."""

from __future__ import annotations

from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui

from edgeplane_common.clients.gateway import error_position
from edgeplane_common.errors import EdgeError
from edgeplane_console.application.state import ConsoleState
from edgeplane_console.ui.auth import ConsoleAuth, Viewer
from edgeplane_console.ui.common import (
    attempt,
    down_banner,
    frame,
    in_words,
    parse_document,
    testid,
    to_yaml,
    when,
    when_ns,
)

NEW_RULE_ACTIONS: list[dict[str, Any]] = [{"log": {}}]


def register(state: ConsoleState, auth: ConsoleAuth) -> None:
    @ui.page("/rules")
    async def rules_page() -> RedirectResponse | None:
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame("Rules", auth, me)
        client, can = me.client, me.can
        box = ui.column().classes("w-full")

        async def load() -> None:
            try:
                rules = await client.rules()
                statuses = {r["id"]: await client.rule_status(r["id"]) for r in rules}
            except EdgeError as err:
                box.clear()
                with box:
                    down_banner(f"the rules engine cannot be asked: {in_words(err)}")
                return
            box.clear()
            with box:
                if not rules:
                    ui.label("no rules yet").classes("ep-muted")
                for rule in rules:
                    rule_id = rule["id"]
                    s = statuses.get(rule_id, {})
                    running = rule.get("status") == "running"
                    with testid(ui.card().classes("w-full"), f"rule-{rule_id}"):
                        with ui.row().classes("items-center gap-4"):
                            ui.label(rule_id).classes("font-bold w-72")
                            testid(ui.label(rule.get("status", "")), f"rule-status-{rule_id}")
                            ui.label(
                                f"in {s.get('recordsIn', 0)} | matched {s.get('matched', 0)}"
                                f" | fired {s.get('fired', 0)}"
                                f" | actions {s.get('actionsFired', 0)} | failures {s.get('actionFailures', 0)}"
                                f" | last fired {when_ns(s.get('lastFired'))}"
                            )
                        with ui.row().classes("items-center gap-2"):
                            if running and can("rule.stop"):
                                testid(
                                    ui.button(
                                        "Stop", on_click=lambda r=rule_id: act(client.stop_rule(r), f"{r} stopped")
                                    ).props("outline dense"),
                                    f"stop-{rule_id}",
                                )
                            elif not running and can("rule.start"):
                                testid(
                                    ui.button(
                                        "Start", on_click=lambda r=rule_id: act(client.start_rule(r), f"{r} started")
                                    ).props("dense"),
                                    f"start-{rule_id}",
                                )
                            if can("rule.edit"):
                                ui.button("Edit", on_click=lambda r=rule: editor(r)).props("outline dense")
                            if can("rule.delete"):
                                ui.button(
                                    "Delete", on_click=lambda r=rule_id: act(client.delete_rule(r), f"{r} deleted")
                                ).props("outline dense color=negative")
                        ui.label(rule.get("sql", "")).classes("font-mono text-sm")
                        if s.get("lastError"):
                            ui.label(f"last error: {s['lastError']}").classes("ep-error")
                        for firing in state.firings.of(rule_id, 3):
                            ui.label(f"alert at {when(firing.at_ms)}: {firing.data}").classes("text-sm ep-muted")

        async def act(call: Any, done: str) -> None:
            await attempt(call, done)
            state.refresh_soon()
            await load()

        def editor(rule: dict[str, Any] | None) -> None:
            existing = rule is not None
            rule = rule or {
                "id": "",
                "sql": "SELECT * FROM events WHERE deviceName = 'demo-plc'",
                "actions": NEW_RULE_ACTIONS,
            }
            with ui.dialog() as dialog, ui.card().classes("w-[48rem]"):
                ui.label("Edit rule" if existing else "New rule").classes("text-xl")
                rule_id = testid(ui.input("id", value=rule.get("id", "")), "rule-id")
                if existing:
                    rule_id.disable()
                ui.label("SQL")
                sql = testid(ui.codemirror(rule.get("sql", ""), language="SQL").classes("w-full h-32"), "rule-sql")
                ui.label("actions (YAML)")
                actions = testid(
                    ui.codemirror(to_yaml(rule.get("actions") or NEW_RULE_ACTIONS), language="YAML").classes(
                        "w-full h-32"
                    ),
                    "rule-actions",
                )
                ui.label("options (YAML)")
                options = ui.codemirror(to_yaml(rule.get("options") or {}), language="YAML").classes("w-full h-20")
                error = testid(ui.label().classes("ep-error"), "rule-error")

                async def save() -> None:
                    sql.decorations = []
                    try:
                        body = {
                            "id": rule_id.value,
                            "sql": sql.value,
                            "actions": parse_document(actions.value),
                            "options": parse_document(options.value) or {},
                        }
                    except ValueError as err:
                        error.text = str(err)
                        return
                    try:
                        if existing:
                            await client.update_rule(rule_id.value, body)
                        else:
                            await client.create_rule(body)
                    except EdgeError as err:
                        error.text = in_words(err)
                        position = error_position(err.message)
                        if position is not None and "sql" in err.message.lower():
                            sql.decorations = [{"kind": "line", "line": position[0], "class": "ep-error-line"}]
                            sql.line_tooltips = {position[0]: err.message}
                        return
                    ui.notify(f"rule {rule_id.value} saved", type="positive")
                    dialog.close()
                    state.refresh_soon()
                    await load()

                with ui.row():
                    testid(ui.button("Save", on_click=save), "save-rule")
                    ui.button("Cancel", on_click=dialog.close).props("flat")
            dialog.open()

        if can("rule.create"):
            testid(ui.button("New rule", on_click=lambda: editor(None)), "new-rule")
        await load()
        ui.timer(max(state.refresh_interval, 2.0), load)
        return None

    @ui.page("/exports")
    async def exports_page() -> RedirectResponse | None:
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame("Exports", auth, me)

        @ui.refreshable
        def body() -> None:
            snap = state.snapshot
            if not snap.at:
                ui.label("asking the app services...").classes("ep-muted")
                return
            if not snap.exports:
                testid(ui.label("no app services running"), "no-exports")
                ui.label(
                    f"(looked at {', '.join(state.app_service_urls[:2])} ... {len(state.app_service_urls)} ports)"
                ).classes("ep-muted")
                return
            for export in snap.exports:
                with testid(ui.card().classes("w-full"), f"export-{export.name}"):
                    ui.label(f"{export.name} ({export.url})").classes("font-bold")
                    if export.error:
                        ui.label(export.error).classes("ep-error")
                    size = f", {export.buffered_bytes:g} bytes" if export.buffered_bytes is not None else ""
                    testid(ui.label(f"buffer depth: {export.buffered:g} messages{size}"), f"buffer-{export.name}")
                    for counter, value in sorted(export.counters.items()):
                        ui.label(f"{counter}: {value:g}").classes("text-sm")

        body()
        ui.timer(max(state.refresh_interval, 1.0), body.refresh)
        return None
