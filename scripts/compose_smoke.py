#!/usr/bin/env python3
"""Compose smoke test (`make compose-smoke`): the real docker-compose.yml, up under podman, checked, down.

1. `compose-up --build` (../shared/tools: podman-compose with local stand-ins for the base images, since
   no registry is reachable) under the project name `edgeplane-smoke`, so a deployment named `edgeplane`
   on the same machine is never touched.
2. Within 120 s every service is ready on its published port: `/api/v3/health` answers 200 (a service
   without it: ping), NATS and Redis accept connections. When one is not, the checks it reports down are shown.
3. Every container's own healthcheck passes (`podman healthcheck run`), and podman applied the CPU and
   memory limits of the compose file.
4. Readings from the Modbus simulator appear in core-data's API.
5. A PUT through core-command changes the simulator's holding register (read back over Modbus TCP).
   The stack is in secure mode: every call goes over HTTPS trusted through the CA secure-init wrote to
   ./.secure, with the first admin's token (its password from ./.secure/admin-password); without a token
   the API answers 401.
6. Figures: time to healthy, image sizes, RSS of each container and of the whole stack.
7. `compose-down -v` leaves no container, pod, volume or network of the project behind.

Run as root with podman installed, with the workspace's Python (.venv/bin/python). Options: --keep (leave
the stack up), --no-build, --tools DIR, --report FILE (figures as JSON). Host ports come from .env; set
HOST_PORT_* in the environment to move them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from pymodbus.client import ModbusTcpClient

from edgeplane.services import PING_PATH
from edgeplane.supervisor import HEALTH_TIMEOUT_S, down_checks
from edgeplane_common.healthcheck import HEALTH_PATH, expand

ROOT = Path(__file__).resolve().parents[1]

PROJECT = "edgeplane-smoke"
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECURE_DIR = ROOT / ".secure"  # secure-init's bind mount: the CA and the first admin's password
ENV_FILE = ROOT / ".env"
PODMAN_RUNC = Path("/opt/podman-runc/bin")  # podman wrapper using runc (crun refuses hybrid cgroups here)
HEALTHY_TIMEOUT_S = 120.0
DATA_TIMEOUT_S = 60.0
DEVICE = "demo-plc"
WRITABLE, WRITABLE_REGISTER, UNIT_ID = "SpeedSetpoint", 1, 1


class SmokeError(Exception):
    pass


def log(message: str) -> None:
    print(f"compose-smoke: {message}", flush=True)


# ---------------------------------------------------------------- the compose file and its tunables


def dotenv() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def tunables() -> dict[str, str]:
    """.env, with variables set in the environment winning (as in compose)."""
    return {k: os.environ.get(k, v) for k, v in dotenv().items()}


def compose_doc() -> dict[str, Any]:
    """The compose file as `compose up` runs it: services of opt-in profiles (the exports) left out."""
    doc: dict[str, Any] = yaml.safe_load(expand(COMPOSE_FILE.read_text(), tunables()))
    doc["services"] = {name: svc for name, svc in doc["services"].items() if not svc.get("profiles")}
    return doc


def published(doc: dict[str, Any]) -> list[str]:
    """The services that publish a port (all but the one-shot secure-init)."""
    return [name for name, svc in doc["services"].items() if svc.get("ports")]


def tls() -> ssl.SSLContext:
    """Trust only the stack's own CA (secure-init writes it at the first `up`)."""
    return ssl.create_default_context(cafile=str(SECURE_DIR / "ca.pem"))


_TOKEN: list[str] = []


def admin_headers(doc: dict[str, Any]) -> dict[str, str]:
    """The first admin's token (logged in once)."""
    if not _TOKEN:
        password = (SECURE_DIR / "admin-password").read_text().strip()
        url = f"https://127.0.0.1:{published_port(doc, 'core-metadata')}/api/v3/auth/login"
        response = httpx.post(url, json={"username": "admin", "password": password}, verify=tls(), timeout=10)
        if response.status_code != 200:
            raise SmokeError(f"admin login: {response.status_code} {response.text}")
        _TOKEN.append(response.json()["token"])
    return {"Authorization": f"Bearer {_TOKEN[0]}"}


def published_port(doc: dict[str, Any], service: str) -> int:
    host_port = str(doc["services"][service]["ports"][0]).split(":")[-2]
    return int(host_port)


def memory_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg]?)i?b?", str(text).strip(), re.IGNORECASE)
    if not match:
        raise SmokeError(f"cannot read memory limit {text!r}")
    return int(float(match.group(1)) * {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2).lower()])


# ---------------------------------------------------------------- podman


@dataclass
class Engine:
    tools: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, tools: Path) -> Engine:
        for tool in ("compose-up", "compose-down", "standin-images"):
            if not (tools / tool).is_file():
                raise SmokeError(f"{tools / tool} not found (pass --tools DIR or set EDGEPLANE_COMPOSE_TOOLS)")
        env = dict(os.environ)
        if PODMAN_RUNC.is_dir() and str(PODMAN_RUNC) not in env.get("PATH", "").split(os.pathsep):
            env["PATH"] = f"{PODMAN_RUNC}{os.pathsep}{env.get('PATH', '')}"
        env.setdefault("BUILDAH_FORMAT", "docker")  # keep the Dockerfile's HEALTHCHECK (OCI images drop it)
        # The standin tools' environment (CONTAINERS_CONF, podman-compose on PATH), as `eval "$(... env)"`.
        printed = subprocess.run(
            ["bash", "-c", f'eval "$("{tools}/standin-images" env)" && env -0'],
            env=env, capture_output=True, check=True,
        ).stdout  # fmt: skip
        for item in printed.split(b"\0"):
            key, sep, value = item.decode().partition("=")
            if sep and key in ("CONTAINERS_CONF", "PATH"):
                env[key] = value
        return cls(tools, env)

    def run(self, *argv: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(argv), env=self.env, capture_output=capture, text=True, cwd=ROOT)
        if check and result.returncode != 0:
            detail = (result.stdout or "") + (result.stderr or "")
            raise SmokeError(f"{' '.join(argv)} exited {result.returncode}\n{detail[-4000:]}")
        return result

    def podman(self, *args: str, check: bool = True) -> str:
        return self.run("podman", *args, check=check).stdout

    def compose_tool(self, tool: str, *args: str, logfile: Path) -> int:
        with logfile.open("a") as out:
            argv = [str(self.tools / tool), "-f", str(COMPOSE_FILE), "-p", PROJECT, *args]
            out.write(f"$ {' '.join(argv)}\n")
            out.flush()
            return subprocess.run(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode

    def containers(self) -> dict[str, dict[str, Any]]:
        """compose service name -> `podman inspect` of its container."""
        ids = self.podman("ps", "-a", "-q", "--filter", f"label=io.podman.compose.project={PROJECT}").split()
        if not ids:
            return {}
        out: dict[str, dict[str, Any]] = {}
        for info in json.loads(self.podman("inspect", *ids)):
            out[info["Config"]["Labels"]["com.docker.compose.service"]] = info
        return out

    def leftovers(self) -> list[str]:
        label = f"label=io.podman.compose.project={PROJECT}"
        found = []
        found += [
            f"container {n}" for n in self.podman("ps", "-a", "--format", "{{.Names}}", "--filter", label).split()
        ]
        for kind, argv in (
            ("pod", ["pod", "ps", "--format", "{{.Name}}"]),
            ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
            ("network", ["network", "ls", "--format", "{{.Name}}"]),
        ):
            found += [f"{kind} {n}" for n in self.podman(*argv).split() if PROJECT in n]
        return found


def parse_podman_time(text: str) -> float:
    """`2026-11-26T15:54:53.123456789Z` or `...+00:00` -> epoch seconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text)
    if not match:
        raise SmokeError(f"cannot read time {text!r}")
    zone = match.group(3) or "Z"
    base = datetime.fromisoformat(match.group(1) + ("+00:00" if zone == "Z" else zone)).timestamp()
    return base + float("0." + (match.group(2) or "0"))


# ---------------------------------------------------------------- checks


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def not_ready(name: str, port: int) -> str | None:
    """None when the service on `port` is ready: its readiness (`/api/v3/health`) answers 200, or, for a
    service without that route, its ping (liveness) does; and the answer names `name` (not another process
    on the port). Otherwise why not, with each check its health reports down."""
    base = f"https://127.0.0.1:{port}"
    if not (SECURE_DIR / "ca.pem").is_file():
        return f"no CA in {SECURE_DIR} yet (secure-init has not run)"
    try:
        response = httpx.get(base + HEALTH_PATH, timeout=HEALTH_TIMEOUT_S, trust_env=False, verify=tls())
        if response.status_code == 404:
            response = httpx.get(base + PING_PATH, timeout=2, trust_env=False, verify=tls())
    except httpx.HTTPError as err:
        return f"not answering ({type(err).__name__})"
    if response.status_code != 200:
        return down_checks(response)
    served = response.json().get("serviceName")
    return None if served == name else f"port {port} is served by {served!r}"


def probes(doc: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """service -> ("http" or "tcp", published port): services whose healthcheck asks over HTTP are asked
    from the host too; the others (NATS, Redis, the simulator) must accept connections."""
    out: dict[str, tuple[str, int]] = {}
    for name in published(doc):
        test = [str(a) for a in doc["services"][name].get("healthcheck", {}).get("test", [])]
        http = any(a.startswith("https://") and a.endswith((HEALTH_PATH, PING_PATH)) for a in test)
        out[name] = ("http" if http else "tcp", published_port(doc, name))
    return out


def wait_all_ready(doc: dict[str, Any], started: float) -> dict[str, float]:
    """Seconds from `started` (epoch) until each service was ready; raises after HEALTHY_TIMEOUT_S with
    what each one still waiting reports down."""
    pending = probes(doc)
    healthy: dict[str, float] = {}
    why: dict[str, str] = {}
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    while pending:
        for name, (kind, port) in list(pending.items()):
            problem = not_ready(name, port) if kind == "http" else (None if tcp_open(port) else "no connection")
            if problem is None:
                healthy[name] = time.time() - started
                del pending[name]
            else:
                why[name] = problem
        if pending and time.monotonic() > deadline:
            waiting = "; ".join(f"{name}: {why[name]}" for name in sorted(pending))
            raise SmokeError(f"not ready within {HEALTHY_TIMEOUT_S:g} s: {waiting}")
        time.sleep(0.25)
    return healthy


def wait_readings(doc: dict[str, Any]) -> int:
    base = f"https://127.0.0.1:{published_port(doc, 'core-data')}/api/v3"
    anonymous = httpx.get(f"{base}/event/count", timeout=5, trust_env=False, verify=tls())
    if anonymous.status_code != 401:
        raise SmokeError(f"GET {base}/event/count without a token answered {anonymous.status_code}, not 401")
    deadline = time.monotonic() + DATA_TIMEOUT_S
    last = ""
    client = httpx.Client(headers=admin_headers(doc), verify=tls(), timeout=5, trust_env=False)
    while time.monotonic() < deadline:
        try:
            response = client.get(f"{base}/reading/count/device/name/{DEVICE}")
            if response.status_code == 200 and response.json()["count"] > 0:
                events = client.get(f"{base}/event/device/name/{DEVICE}", params={"limit": 1}).json()["events"]
                if not events or not events[0]["readings"]:
                    raise SmokeError(f"core-data counts readings of {DEVICE} but returns no event with readings")
                count: int = response.json()["count"]
                return count
            last = response.text
        except httpx.HTTPError as err:
            last = repr(err)
        time.sleep(1)
    raise SmokeError(f"no readings of {DEVICE} in core-data within {DATA_TIMEOUT_S:g} s (last: {last})")


def holding_register(port: int) -> int:
    client = ModbusTcpClient("127.0.0.1", port=port, timeout=5, retries=1)
    try:
        if not client.connect():  # type: ignore[no-untyped-call]
            raise SmokeError(f"cannot connect to the simulator on 127.0.0.1:{port}")
        response = client.read_holding_registers(WRITABLE_REGISTER, count=1, device_id=UNIT_ID)
        if response.isError():
            raise SmokeError(f"reading the simulator failed: {response}")
        value: int = response.registers[0]
        return value
    finally:
        client.close()  # type: ignore[no-untyped-call]


def command_write(doc: dict[str, Any]) -> tuple[int, int]:
    url = f"https://127.0.0.1:{published_port(doc, 'core-command')}/api/v3/device/name/{DEVICE}/{WRITABLE}"
    sim_port = published_port(doc, "modbus-sim")
    deadline = time.monotonic() + DATA_TIMEOUT_S
    client = httpx.Client(headers=admin_headers(doc), verify=tls(), timeout=10, trust_env=False)
    while True:  # the device may still be provisioning
        read = client.get(url)
        if read.status_code == 200:
            break
        if time.monotonic() > deadline:
            raise SmokeError(f"GET {url}: {read.status_code} {read.text}")
        time.sleep(1)
    before = holding_register(sim_port)
    target = (before + 111) % 3000
    write = client.put(url, json={WRITABLE: str(target)})
    if write.status_code != 200:
        raise SmokeError(f"PUT {url}: {write.status_code} {write.text}")
    after = holding_register(sim_port)
    if after != target:
        raise SmokeError(f"PUT {WRITABLE}={target} through core-command, but the register holds {after}")
    return before, after


def check_healthchecks(engine: Engine, containers: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Run each container's healthcheck once (podman 4.3 does not schedule them here)."""
    results: dict[str, str] = {}
    for name, info in sorted(containers.items()):
        test = (info["Config"].get("Healthcheck") or {}).get("Test") or []
        if name == "secure-init":
            code = info["State"].get("ExitCode")
            if code != 0:
                raise SmokeError(f"secure-init exited {code}")
            results[name] = "done (exit 0)"
            continue
        if name == "nats":
            has_wget = engine.run("podman", "exec", info["Id"], "sh", "-c", "command -v wget", check=False)
            if has_wget.returncode != 0:
                results[name] = "not run: this nats image has no wget (the official alpine image has)"
                continue
        result = engine.run("podman", "healthcheck", "run", info["Id"], check=False)
        if result.returncode != 0:
            raise SmokeError(f"{name}: healthcheck {test} failed: {result.stdout}{result.stderr}")
        results[name] = "healthy"
    return results


def check_limits(doc: dict[str, Any], containers: dict[str, dict[str, Any]]) -> None:
    for name, svc in doc["services"].items():
        limits = svc["deploy"]["resources"]["limits"]
        host = containers[name]["HostConfig"]
        memory, nano_cpus = host.get("Memory"), host.get("NanoCpus")
        if memory != memory_bytes(limits["memory"]) or nano_cpus != int(float(limits["cpus"]) * 1e9):
            raise SmokeError(f"{name}: limits {limits} not applied (memory {memory}, NanoCpus {nano_cpus})")


def container_rss(containers: dict[str, dict[str, Any]]) -> dict[str, int]:
    rss: dict[str, int] = {}
    for name, info in containers.items():
        if not info["State"]["Pid"]:  # secure-init has done its work and exited
            continue
        process = psutil.Process(info["State"]["Pid"])
        rss[name] = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    return rss


def image_sizes(engine: Engine, doc: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """image -> (size, size above the python:3.11-slim base) for every image the compose file builds."""
    base = int(json.loads(engine.podman("image", "inspect", "python:3.11-slim"))[0]["Size"])
    out: dict[str, tuple[int, int]] = {}
    for svc in doc["services"].values():
        if "build" in svc and svc["image"] not in out:
            size = int(json.loads(engine.podman("image", "inspect", svc["image"]))[0]["Size"])
            out[svc["image"]] = (size, size - base)
    return out


def dump_logs(engine: Engine, containers: dict[str, dict[str, Any]]) -> None:
    for name, info in sorted(containers.items()):
        state = info["State"]
        print(f"--- {name}: {state.get('Status')} (exit {state.get('ExitCode')}), last log lines ---")
        print(engine.run("podman", "logs", "--tail", "25", info["Id"], check=False).stdout.rstrip())


def explain(text: str) -> None:
    if "cgroups in hybrid mode" in text:
        log("hint: crun refuses this machine's hybrid cgroup layout; put a podman wrapper using runc first on")
        log(f"      PATH ({PODMAN_RUNC}/podman: exec /usr/bin/podman --runtime runc --cgroup-manager cgroupfs)")
        log("      see docs/troubleshooting.md")


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    tools = Path(os.environ.get("EDGEPLANE_COMPOSE_TOOLS", ROOT.parent / "shared" / "tools"))
    parser.add_argument("--tools", type=Path, default=tools, help=f"compose-up/compose-down (default {tools})")
    parser.add_argument("--keep", action="store_true", help="leave the stack running (compose-down yourself)")
    parser.add_argument("--no-build", action="store_true", help="use the images already built")
    parser.add_argument("--report", type=Path, help="write the figures as JSON to this file")
    parser.add_argument(
        "--log", type=Path, default=ROOT / ".data" / "compose-smoke.log", help="where compose-up/down output goes"
    )
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        log("error: run as root (podman here runs rootful)")
        return 2
    if shutil.which("podman") is None and not (PODMAN_RUNC / "podman").exists():
        log("error: podman is not installed (apt-get install podman)")
        return 2
    try:
        engine = Engine.create(args.tools.resolve())
    except (SmokeError, subprocess.CalledProcessError) as err:
        log(f"error: {err}")
        return 2
    doc = compose_doc()
    busy = [f"{name} {published_port(doc, name)}" for name in published(doc) if tcp_open(published_port(doc, name))]
    if busy:
        log(f"error: host ports in use: {', '.join(busy)} (stop what holds them, or set HOST_PORT_* to move them)")
        return 2
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text("")
    figures: dict[str, Any] = {}
    code = 1
    containers: dict[str, dict[str, Any]] = {}
    try:
        engine.compose_tool("compose-down", "-v", logfile=args.log)  # a previous --keep run
        log(f"compose-up{'' if args.no_build else ' --build'} (project {PROJECT}; output in {args.log})")
        t0 = time.time()
        if engine.compose_tool("compose-up", *([] if args.no_build else ["--build"]), logfile=args.log) != 0:
            explain(args.log.read_text())
            raise SmokeError(f"compose-up failed; see {args.log}")
        figures["compose_up_s"] = round(time.time() - t0, 1)
        containers = engine.containers()
        missing = set(doc["services"]) - set(containers)
        if missing:
            raise SmokeError(f"no container for: {', '.join(sorted(missing))}")
        started = min(parse_podman_time(c["State"]["StartedAt"]) for c in containers.values())
        healthy = wait_all_ready(doc, started)
        figures["healthy_s"] = {k: round(v, 1) for k, v in sorted(healthy.items(), key=lambda kv: kv[1])}
        figures["all_healthy_s"] = round(max(healthy.values()), 1)
        log(f"every service is ready, {figures['all_healthy_s']} s after the first container started")

        containers = engine.containers()
        figures["healthchecks"] = check_healthchecks(engine, containers)
        check_limits(doc, containers)
        log("container healthchecks pass; CPU and memory limits applied")

        if "core-data" in doc["services"]:
            figures["readings"] = wait_readings(doc)
            log(f"core-data holds {figures['readings']} readings of {DEVICE}")
        if "core-command" in doc["services"]:
            before, after = command_write(doc)
            log(f"PUT {WRITABLE} through core-command: simulator register {WRITABLE_REGISTER} {before} -> {after}")

        rss = container_rss(containers)
        figures["rss_mib"] = {k: round(v / 2**20, 1) for k, v in sorted(rss.items())}
        figures["rss_total_mib"] = round(sum(rss.values()) / 2**20, 1)
        sizes = image_sizes(engine, doc)
        figures["image_mb"] = {k: [round(s / 1e6), round(a / 1e6)] for k, (s, a) in sizes.items()}
        code = 0
    except (SmokeError, httpx.HTTPError, OSError, psutil.Error) as err:
        log(f"FAILED: {err}")
        if containers:
            dump_logs(engine, engine.containers())
    finally:
        if args.keep:
            log(f"--keep: stack left running; stop it with {args.tools}/compose-down -p {PROJECT} -v")
        else:
            t1 = time.time()
            rc = engine.compose_tool("compose-down", "-v", logfile=args.log)
            figures["compose_down_s"] = round(time.time() - t1, 1)
            left = engine.leftovers()
            if rc != 0 or left:
                log(f"FAILED: compose-down -v exited {rc}; left behind: {', '.join(left) or 'nothing'}")
                code = 1
            else:
                log("compose-down -v left nothing behind")

    if figures:
        print(json.dumps(figures, indent=2))
        if args.report:
            args.report.write_text(json.dumps(figures, indent=2) + "\n")
    log("passed" if code == 0 else "failed")
    return code


if __name__ == "__main__":
    sys.exit(main())
