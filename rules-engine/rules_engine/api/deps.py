"""What the rules-engine routers take from FastAPI, written once: the use case as a dependency alias."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rules_engine.application.rules import RuleManager


def manager(request: Request) -> RuleManager:
    m: RuleManager = request.app.state.rules
    return m


M = Annotated[RuleManager, Depends(manager)]
