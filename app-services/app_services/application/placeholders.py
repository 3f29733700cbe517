"""EdgeX's context placeholders in export URLs and topics: `{devicename}`, `{profilename}`, `{sourcename}`,
`{receivedtopic}` (any casing). For a batch they are those of its first item."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from app_services.application.data import Context
from app_services.application.errors import PipelineError

NAMES = ("deviceName", "profileName", "sourceName", "receivedTopic", "eventId")
_PLACEHOLDER = re.compile(r"\{([A-Za-z]+)\}")


def compile_placeholders(text: str, where: str, *, url: bool = False) -> Callable[[Context], str]:
    """A function of the context giving `text` with its placeholders filled (percent-quoted in a URL)."""
    known = {n.lower() for n in NAMES}
    for name in _PLACEHOLDER.findall(text):
        if name.lower() not in known:
            raise PipelineError(f"{where}: unknown placeholder {{{name}}}; known: {', '.join(NAMES)}")
    if not _PLACEHOLDER.search(text):
        return lambda ctx: text

    def render(ctx: Context) -> str:
        def one(m: re.Match[str]) -> str:
            value = ctx.lookup(m.group(1)) or ""
            return quote(value, safe="") if url else value

        return _PLACEHOLDER.sub(one, text)

    return render


__all__ = ["NAMES", "compile_placeholders"]
