#!/usr/bin/env python3
"""EdgeX's own API suites against a fresh stack (`make taf`).

1. Checks that the EdgeX default ports of the services under test are free (exit 2 if one is busy: only one
   stack can hold them, and another developer's may be running).
2. Starts `edgeplane up` with a temporary data dir (empty store), embedded NATS and Redis on free ports, and
   only the services the suites talk to: no demo PLC, no simulator, no other producer of events.
3. Runs `edgex-taf` (../shared/tools, see its .md) on the suites given (default core-metadata core-data) and
   prints its summary lines.
4. Stops the stack, also on failure or Ctrl-C, and removes the data dir (`--keep` leaves it for reading logs).

Exit: the runner's code (0 when every suite ran, whatever the results), 1 when the stack did not start,
2 on a busy port or a missing runner. Run with the workspace's Python (.venv/bin/python).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from edgeplane.services import Service, by_name
from edgeplane.supervisor import LOOPBACK, http_ping
from edgeplane_common.embedded import free_port, port_in_use

ROOT = Path(__file__).resolve().parents[1]
EDGEPLANE = ROOT / ".venv" / "bin" / "edgeplane"

DEFAULT_SUITES = ("core-metadata", "core-data")
KNOWN_SUITES = ("core-metadata", "core-data", "core-command")
# What the suites address (TAF's deployment runs these). device-modbus and its simulator stay out: the demo
# PLC's autoEvents would fill core-data.
WANTED_SERVICES = ("core-metadata", "core-data", "core-command", "device-virtual")
START_TIMEOUT_S = 120.0
START_ATTEMPTS = 3
STOP_TIMEOUT_S = 30.0
SUMMARY = re.compile(r"^(core-metadata|core-data|core-command|overall): ")

EXIT_START_FAILED = 1
EXIT_USAGE = 2


def log(message: str) -> None:
    print(f"taf: {message}", flush=True)


def find_runner(given: str | None) -> Path | None:
    """$EDGEX_TAF or --taf, else shared/tools/edgex-taf next to the checkout or one of its parents (a worktree
    lives one level deeper than the main checkout)."""
    if given:
        path = Path(given)
        return path if path.is_file() else None
    for parent in ROOT.parents:
        candidate = parent / "shared" / "tools" / "edgex-taf"
        if candidate.is_file():
            return candidate
    return None


def services_under_test() -> list[Service]:
    return [by_name(name) for name in WANTED_SERVICES]


def clean_env() -> dict[str, str]:
    """The caller's environment without what would point the stack elsewhere (offsets, external servers)."""
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("EDGEPLANE_") or name.endswith(("_HTTP__PORT", "_NATS__URL", "_REDIS__URL")):
            del env[name]
    # device-virtual serves the devices the suites add; its own res/ devices would be extra entities in
    # the counts and their autoEvents another producer of events.
    env["DEVICE_VIRTUAL_PROVISION"] = "false"
    return env


def start_stack(services: Sequence[Service], data_dir: Path) -> subprocess.Popen[bytes]:
    cmd = [str(EDGEPLANE), "up", "--data-dir", str(data_dir), "--log-text"]
    cmd += ["--nats-port", str(free_port()), "--redis-port", str(free_port())]
    for service in services:
        cmd += ["--only", service.name]
    # Its own process group: Ctrl-C in the terminal reaches us, and we stop the stack in order.
    with (data_dir / "launcher.log").open("wb") as log_file:
        return subprocess.Popen(
            cmd, stdout=log_file, stderr=subprocess.STDOUT, env=clean_env(), cwd=ROOT, start_new_session=True
        )


def wait_ready(launcher: subprocess.Popen[bytes], services: Sequence[Service]) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    waiting = list(services)
    while waiting and time.monotonic() < deadline:
        if launcher.poll() is not None:
            return False
        waiting = [s for s in waiting if not http_ping(s.ping_url())]
        if waiting:
            time.sleep(0.5)
    return not waiting


def stop_stack(launcher: subprocess.Popen[bytes]) -> None:
    if launcher.poll() is not None:
        return
    launcher.send_signal(signal.SIGTERM)  # the launcher stops services, then NATS and Redis
    try:
        launcher.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log("the launcher did not stop in time; killing its process group")
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.wait()


def run_suites(runner: Path, suites: Sequence[str], out: Path) -> int:
    """Run the runner with its console going to `out`; print its summary lines and where the details are."""
    with out.open("wb") as console:
        code = subprocess.run([str(runner), *suites], stdout=console, stderr=subprocess.STDOUT, check=False).returncode
    lines = out.read_text(errors="replace").splitlines()
    summary = [line for line in lines if SUMMARY.match(line)]
    if summary:
        print("\n".join(summary))
    else:
        print("\n".join(lines[-20:]))
    log("details: /tmp/taf/out-latest/<suite>/ (failures.txt, log.html)")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("suites", nargs="*", help=f"suites to run (default: {' '.join(DEFAULT_SUITES)})")
    parser.add_argument("--taf", default=os.environ.get("EDGEX_TAF"), help="path of the edgex-taf runner")
    parser.add_argument("--keep", action="store_true", help="keep the stack's data dir (logs) afterwards")
    args = parser.parse_args(argv)

    suites = args.suites or list(DEFAULT_SUITES)
    unknown = [s for s in suites if s not in KNOWN_SUITES]
    if unknown:
        log(f"unknown suite(s) {', '.join(unknown)}; known: {', '.join(KNOWN_SUITES)}")
        return EXIT_USAGE
    runner = find_runner(args.taf)
    if runner is None:
        log("edgex-taf runner not found: pass --taf PATH or set EDGEX_TAF (it lives in shared/tools/)")
        return EXIT_USAGE
    if not EDGEPLANE.is_file():
        log(f"{EDGEPLANE} is missing: run `make bootstrap` first")
        return EXIT_USAGE

    services = services_under_test()
    busy = [s for s in services if port_in_use(LOOPBACK, s.port)]
    if busy:
        for s in busy:
            log(f"port {s.port} ({s.name}) is busy: another stack holds the EdgeX default ports")
        log("stop it (or wait until its run ends) and try again; nothing was started")
        return EXIT_USAGE

    data_dir = Path(tempfile.mkdtemp(prefix="edgeplane-taf-"))
    log(f"starting {', '.join(s.name for s in services)} on their default ports (data in {data_dir})")
    launcher = start_stack(services, data_dir)
    try:
        for _ in range(START_ATTEMPTS - 1):
            # The launcher exits 2 when a port was taken between our check and its start (the free ports
            # picked for NATS and Redis race with every other process on the machine): pick new ones.
            if wait_ready(launcher, services) or launcher.poll() != EXIT_USAGE:
                break
            log("a port was taken meanwhile; starting again")
            launcher = start_stack(services, data_dir)
        if not wait_ready(launcher, services):
            log(f"the stack did not become ready; its log: {data_dir / 'launcher.log'}")
            print((data_dir / "launcher.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            args.keep = True
            return EXIT_START_FAILED
        log(f"running edgex-taf {' '.join(suites)}")
        return run_suites(runner, suites, data_dir / "taf-console.txt")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        stop_stack(launcher)
        if args.keep:
            log(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
