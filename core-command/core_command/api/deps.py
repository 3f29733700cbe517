"""What core-command's routers take from FastAPI, written once: the use case as a dependency alias."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from core_command.application.commands import CommandManager


def manager(request: Request) -> CommandManager:
    m: CommandManager = request.app.state.commands
    return m


M = Annotated[CommandManager, Depends(manager)]
