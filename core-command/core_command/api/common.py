"""What core-command's routers share: paging parameters (dependency aliases are in `deps`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

Offset = Annotated[int, Query(ge=0, description="Devices to skip")]
Limit = Annotated[int, Query(ge=-1, description="Devices to return; -1 = all up to core-metadata's MaxResultCount")]
