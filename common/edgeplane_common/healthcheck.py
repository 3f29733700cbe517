"""Container healthcheck: `python -m edgeplane_common.healthcheck URL` exits 0 when the URL answers.

The slim images have no curl or wget, so the Dockerfiles' and docker-compose.yml's healthchecks run this.
Standard library only, so it starts in a few tens of milliseconds and needs none of the service's imports.

- `http://HOST:PORT/PATH`: healthy when a GET answers 200 (services: `/api/v3/health`, their readiness:
  503 while NATS, Redis, the events consumer or core-metadata is down; `/api/v3/ping` is liveness only).
- `tcp://HOST:PORT`: healthy when the port accepts a connection (the Modbus simulator).

`https://` is verified with the CA of `--ca-file PATH`, else of `$EDGEPLANE_TLS__CA_FILE` (what a secure
deployment gives every service), else the system's trust store.

`${VAR}` and `${VAR:-default}` in the URL are replaced from the environment, so an image's exec-form
`HEALTHCHECK` can follow a port changed at run time (`CORE_METADATA_HTTP__PORT`). Proxy variables are
ignored: the check is always a direct connection.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

HEALTH_PATH = "/api/v3/health"
"""The readiness route every service serves and the images' healthchecks ask."""
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DEFAULT_TIMEOUT_S = 3.0
CA_FILE_ENV = "EDGEPLANE_TLS__CA_FILE"


def expand(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace `${VAR}` and `${VAR:-default}` (default also when VAR is empty, as in the shell)."""
    env = os.environ if env is None else env

    def sub(match: re.Match[str]) -> str:
        value = env.get(match.group(1), "")
        return value if value else (match.group(2) or "")

    return _VAR.sub(sub, text)


def check(url: str, timeout: float = DEFAULT_TIMEOUT_S, *, ca_file: str | None = None) -> str | None:
    """None when healthy, else why not. `ca_file`: the CA an https:// URL is verified with."""
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        if not parts.hostname or parts.port is None:
            return f"bad tcp URL {url!r} (want tcp://HOST:PORT)"
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=timeout):
                return None
        except OSError as err:
            return f"{url}: {err}"
    if parts.scheme not in ("http", "https"):
        return f"unsupported URL {url!r} (want http://, https:// or tcp://)"
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if parts.scheme == "https":
        try:
            context = ssl.create_default_context(cafile=ca_file or None)
        except (OSError, ssl.SSLError) as err:
            return f"cannot use the CA file {ca_file}: {getattr(err, 'strerror', None) or err}"
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout) as response:
            status: int = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except (urllib.error.URLError, OSError) as err:
        return f"{url}: {getattr(err, 'reason', err)}"
    return None if status == 200 else f"{url}: HTTP {status}"


USAGE = (
    "usage: python -m edgeplane_common.healthcheck [--ca-file PATH] URL   (http://..., https://... or tcp://HOST:PORT)"
)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    if any(a in ("-h", "--help") for a in args):
        print(USAGE)
        return 0
    ca_file = env.get(CA_FILE_ENV) or None
    if len(args) == 3 and args[0] == "--ca-file":
        ca_file, args = expand(args[1], env), args[2:]
    if len(args) != 1 or args[0].startswith("-"):
        print(USAGE)
        return 2
    problem = check(expand(args[0], env), ca_file=ca_file)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
