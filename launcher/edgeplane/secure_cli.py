"""`edgeplane secure init`: generate what secure mode needs (keys, certificates, credentials, tokens)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeplane import secure
from edgeplane.services import SERVICES

secure_app = typer.Typer(help="Secure mode: generate keys, certificates, credentials and tokens.", no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)

DEFAULT_DIR = Path(".data/secure")
ADMIN_PASSWORD_ENV = "EDGEPLANE_ADMIN_PASSWORD"


@secure_app.command("init")
def secure_init(
    directory: Annotated[Path, typer.Option("--dir", help="Where the secure configuration is written.")] = DEFAULT_DIR,
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host", help="Another name or address the services are reached at (repeatable).", metavar="NAME"
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys and credentials.")] = False,
    admin_password: Annotated[
        str | None,
        typer.Option(
            "--admin-password",
            envvar=ADMIN_PASSWORD_ENV,
            help="Password of the first admin (default: generated and printed once).",
            show_default=False,
        ),
    ] = None,
    bundles: Annotated[
        Path | None,
        typer.Option("--bundles", help="Also copy each service's files into <bundles>/<service>/ (containers)."),
    ] = None,
    mount: Annotated[
        str, typer.Option("--mount", help="Where a service sees its bundle folder (with --bundles).")
    ] = "/run/edgeplane",
    bundle_owner: Annotated[
        int | None, typer.Option("--bundle-owner", help="uid the services' bundles belong to (their user).")
    ] = None,
) -> None:
    """Create (or complete) the secure configuration; existing keys are kept unless --force."""
    config = secure.init(
        directory.resolve(), SERVICES, hosts=host or (), force=force, admin_password=admin_password or None
    )
    out.print(f"secure configuration in {config.root} (per-service settings: {config.root / secure.ENV_DIR}/)")
    if bundles is not None:
        for name in config.env:
            secure.bundle(config, name, bundles / name, mount, owner=bundle_owner)
        for server in secure.SERVER_FILES:
            secure.server_bundle(config, server, bundles / server, mount)
        out.print(f"per-service bundles in {bundles}/ (seen by each service at {mount})")
    if config.admin_password:
        out.print(
            f"first admin: user 'admin', password [bold]{config.admin_password}[/] "
            f"(shown once; kept for core-metadata in {config.root}/admin-password)"
        )
