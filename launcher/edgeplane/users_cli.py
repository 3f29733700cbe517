"""`edgeplane user add|remove|list` and `edgeplane token service` (secure mode).

Users are managed through core-metadata's REST API with an admin's token, never in Redis directly: the CLI
then needs no database credentials, and core-metadata stays the only writer of users (docs/adr/0004).
The first admin comes from core-metadata's own start (`SECURITY__ADMIN_PASSWORD`)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from edgeplane import login as logins
from edgeplane_common.auth import TokenIssuer, load_or_create_signing_key
from edgeplane_common.auth.roles import USER_ROLES, Role
from edgeplane_common.tls import CA_FILE_ENV, TlsConfigError, client_verify

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

user_app = typer.Typer(help="Users of secure mode (kept by core-metadata).", no_args_is_help=True)
token_app = typer.Typer(help="Tokens of secure mode.", no_args_is_help=True)

MetadataUrl = Annotated[
    str,
    typer.Option("--metadata-url", envvar="EDGEPLANE_METADATA_URL", help="core-metadata's base URL."),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="EDGEPLANE_TOKEN",
        help="An admin's token (else log in with --as, else the one `edgeplane login` stored).",
        show_default=False,
    ),
]
As = Annotated[
    str | None,
    typer.Option("--as", help="Log in as this admin first; the password comes from EDGEPLANE_PASSWORD or a prompt."),
]
DEFAULT_METADATA_URL = "http://127.0.0.1:59881"


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}")
    return typer.Exit(1)


def _call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    try:
        verify = client_verify(os.environ.get(CA_FILE_ENV))  # https:// core-metadata: its CA
        response = httpx.request(method, url, timeout=30, verify=verify, **kwargs)
    except TlsConfigError as exc:
        raise _fail(str(exc)) from None
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach core-metadata at {url}: {exc}") from exc
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise _fail(f"{response.status_code}: {message}")
    return response


def login(metadata_url: str, user: str, password: str) -> str:
    body = {"username": user, "password": password}
    token: str = _call("POST", f"{metadata_url}/api/v3/auth/login", json=body).json()["token"]
    return token


def _headers(metadata_url: str, token: str | None, as_user: str | None) -> dict[str, str]:
    if token is None and as_user is not None:
        password = os.environ.get("EDGEPLANE_PASSWORD") or getpass.getpass(f"password of {as_user}: ")
        token = login(metadata_url, as_user, password)
    if token is None:
        try:
            token = logins.token_for(metadata_url)
        except logins.LoginExpired as expired:
            raise _fail(str(expired)) from None
    if token is None:
        raise _fail("give an admin's token (--token or EDGEPLANE_TOKEN), log in with --as ADMIN or `edgeplane login`")
    return {"Authorization": f"Bearer {token}"}


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option("--role", help=f"One of {', '.join(USER_ROLES)}.")],
    password: Annotated[
        str | None, typer.Option("--password", help="The new user's password (default: prompted).")
    ] = None,
    metadata_url: MetadataUrl = DEFAULT_METADATA_URL,
    token: Token = None,
    as_user: As = None,
) -> None:
    """Add a user with a role: viewer (reads), operator (also commands, rule start/stop) or admin."""
    if role not in USER_ROLES:
        raise _fail(f"role {role!r} is not one of {', '.join(USER_ROLES)}")
    headers = _headers(metadata_url, token, as_user)
    if password is None:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise _fail("the passwords differ")
    body = {"username": name, "role": role, "password": password}
    _call("POST", f"{metadata_url}/api/v3/user", json=body, headers=headers)
    out.print(f"added user {name} ({role})")


@user_app.command("remove")
def user_remove(
    name: Annotated[str, typer.Argument(help="User name")],
    metadata_url: MetadataUrl = DEFAULT_METADATA_URL,
    token: Token = None,
    as_user: As = None,
) -> None:
    """Remove a user; core-metadata refuses its tokens at once, other services when they expire."""
    _call("DELETE", f"{metadata_url}/api/v3/user/name/{name}", headers=_headers(metadata_url, token, as_user))
    out.print(f"removed user {name}")


@user_app.command("list")
def user_list(metadata_url: MetadataUrl = DEFAULT_METADATA_URL, token: Token = None, as_user: As = None) -> None:
    """List the users and their roles."""
    users = _call("GET", f"{metadata_url}/api/v3/user/all", headers=_headers(metadata_url, token, as_user)).json()
    table = Table("user", "role", box=None)
    for user in users["users"]:
        table.add_row(user["username"], user["role"])
    out.print(table)


@token_app.command("service")
def token_service(
    name: Annotated[str, typer.Argument(help="The service the token is for (e.g. core-data)")],
    key: Annotated[Path, typer.Option("--key", help="core-metadata's token signing key (SECURITY__SIGNING_KEY_FILE).")],
    ttl_days: Annotated[float, typer.Option("--ttl-days", help="Days the token stays valid.")] = 365.0,
) -> None:
    """Print a service token for NAME (set it as that service's SECURITY__SERVICE_TOKEN)."""
    if not key.exists():
        raise _fail(f"no signing key at {key}")
    issuer = TokenIssuer(load_or_create_signing_key(key))
    out.print(issuer.issue(name, Role.SERVICE, ttl=ttl_days * 86400, kind="service"))
