"""`/`: every service with its health, version and port; events/s and readings/s; devices UP/DOWN; problems."""

from __future__ import annotations

import time
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui

from edgeplane_console.application.state import ConsoleState
from edgeplane_console.ui.auth import ConsoleAuth, Viewer
from edgeplane_console.ui.common import frame, testid


def rate_chart_options(state: ConsoleState) -> dict[str, Any]:
    now = time.time()
    events = state.hub.events.series(now)
    readings = state.hub.readings.series(now)
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"data": ["events/s", "readings/s"]},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value"},
        "series": [
            {"name": "events/s", "type": "line", "showSymbol": False, "data": [[s * 1000, c] for s, c in events]},
            {"name": "readings/s", "type": "line", "showSymbol": False, "data": [[s * 1000, c] for s, c in readings]},
        ],
    }


def register(state: ConsoleState, auth: ConsoleAuth) -> None:
    @ui.page("/")
    async def overview() -> RedirectResponse | None:
        me = await auth.viewer()
        if not isinstance(me, Viewer):
            return me
        frame("Overview", auth, me)

        @ui.refreshable
        def summary() -> None:
            snap = state.snapshot
            if not snap.at:
                ui.label("asking the services...").classes("ep-muted")
                return
            up, down = snap.devices_by_state()
            with ui.row().classes("gap-8"):
                testid(ui.label(f"devices UP: {up}"), "devices-up")
                testid(ui.label(f"devices DOWN: {down}"), "devices-down")
                now = time.time()
                ui.label(f"events/s: {state.hub.events.rate(now):.1f}")
                ui.label(f"readings/s: {state.hub.readings.rate(now):.1f}")
            rows = [
                {
                    "service": s.name,
                    "status": "up" if s.up else ("down" if not s.reachable else "unhealthy"),
                    "version": s.version or "-",
                    "port": s.port,
                    "message": s.message,
                }
                for s in snap.services
            ] + [
                {"service": e.name, "status": "down" if e.error else "up", "version": e.version or "-",
                 "port": e.url.rsplit(":", 1)[-1], "message": e.error}
                for e in snap.exports
            ]  # fmt: skip
            columns = [
                {"name": k, "label": k, "field": k, "align": "left"}
                for k in ("service", "status", "version", "port", "message")
            ]
            testid(ui.table(columns=columns, rows=rows, row_key="service"), "services")
            ui.label("Open problems").classes("text-xl")
            problems = snap.problems()
            with testid(ui.column(), "problems"):
                if not problems:
                    ui.label("none").classes("ep-muted")
                for p in problems:
                    ui.label(f"{p.kind} {p.subject}: {p.text}").classes("ep-error")

        summary()
        ui.label("Events and readings per second (last 5 minutes, since the console started)").classes("text-xl")
        chart = testid(ui.echart(rate_chart_options(state)).classes("w-full h-64"), "rates")

        def tick() -> None:
            summary.refresh()
            chart.options.update(rate_chart_options(state))
            chart.update()

        ui.timer(max(state.refresh_interval, 1.0), tick)
        return None
