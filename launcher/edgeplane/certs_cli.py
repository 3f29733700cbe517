"""`edgeplane certs init`: a local CA and a TLS certificate per service (launcher/edgeplane/secure/tls.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from edgeplane.secure import tls
from edgeplane.services import SERVICES
from edgeplane_common.tls import CA_FILE_ENV

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

certs_app = typer.Typer(help="TLS certificates of secure mode.", no_args_is_help=True)

DEFAULT_DIR = Path(".data/secure")


@certs_app.command("init")
def certs_init(
    directory: Annotated[
        Path, typer.Option("--dir", help="The secure directory (ca.pem, ca.key, certs/).")
    ] = DEFAULT_DIR,
    hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Another name or IP address the services are reached at (repeatable); localhost, 127.0.0.1, "
            "::1 and each service's name are always in its certificate.",
            metavar="NAME",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the CA and every certificate.")] = False,
) -> None:
    """Create a local CA and a certificate for every service, NATS and Redis; existing ones still valid are kept."""
    directory = directory.resolve()
    try:
        report = tls.ensure(directory, [s.name for s in SERVICES], hosts=hosts or [], force=force)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None
    except OSError as exc:
        err.print(f"error: cannot write in {directory}: {exc.strerror or exc}", markup=False)
        raise typer.Exit(1) from None
    certs = [p for p in report.created if p.suffix == ".pem" and p.parent.name == tls.CERTS_DIR]
    kept = [p for p in report.kept if p.suffix == ".pem" and p.parent.name == tls.CERTS_DIR]
    ca = "created" if directory / tls.CA_CERT in report.created else "kept"
    out.print(f"CA {directory / tls.CA_CERT} ({ca}; its key {tls.CA_KEY} is readable by you only)")
    out.print(f"certificates in {directory / tls.CERTS_DIR}: {len(certs)} created, {len(kept)} kept")
    out.print(f"clients trust the CA with: export {CA_FILE_ENV}={directory / tls.CA_CERT}")
