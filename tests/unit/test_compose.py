"""docker-compose.yml, .env, .dockerignore and the Dockerfiles, checked without a container engine.

- The compose file is valid against the compose-spec JSON schema (the copy check-jsonschema ships), both
  as written and with .env substituted.
- Its edgeplane services are the launcher's SERVICES (launcher/edgeplane/services.py): same names, same
  `python -m <module>` commands, same container ports, same environment variable names. One list.
- Every service has a healthcheck, CPU and memory limits (all together within a 2-core, 2 GiB gateway),
  `restart: unless-stopped` and `depends_on` with health conditions on what it talks to at start.
- Every image is built from the one Dockerfile at the root, which starts from python:3.11-slim, installs
  exactly the workspace projects of the build arg PROJECT (scripts/workspace.py closure) and runs as a
  non-root user; each image's build args name the service's project, a module that exists and a HEALTHCHECK
  on the readiness path.

The stack really running is `make compose-smoke` (scripts/compose_smoke.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from edgeplane.services import (
    LOG_JSON_ENV,
    METADATA_URL_ENV,
    NATS,
    REDIS,
    SERVICES,
    SHARED_ENV_PREFIX,
    Service,
    by_name,
)
from edgeplane_common.healthcheck import HEALTH_PATH, expand
from edgeplane_common.settings import ENV_FILE_VAR
from edgeplane_common.tls import CA_FILE_ENV
from tests.support.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_FILE = ROOT / ".env"
INFRA_SERVICES = {NATS.name, REDIS.name}
INIT_SERVICE = "secure-init"
"""Secure mode's one-shot init (`edgeplane secure init`), run before everything else."""
SERVICE_UID = 10001  # the Dockerfile's user: each service's bundle belongs to it
BUNDLE_MOUNT = "/run/edgeplane"
BASE_IMAGE = "python:3.11-slim"
HEALTHCHECK_MODULE = "edgeplane_common.healthcheck"

# Arguments a container needs on top of the launcher's command line: the simulator listens on 127.0.0.1
# unless told otherwise, and in a container it must accept connections from the other containers.
CONTAINER_ARGS: dict[str, list[str]] = {"modbus-sim": ["--host", "0.0.0.0"], "opcua-sim": ["--host", "0.0.0.0"]}

# The gateway: 2 cores and 2 GiB, of which the stack may take 1.5 GiB (the rest is the OS's).
STACK_MEMORY_BUDGET = 1536 * 2**20
MAX_CPUS_PER_SERVICE = 1.0

_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmg]?)i?b?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def _memory_bytes(text: str) -> int:
    match = _MEMORY.fullmatch(str(text).strip())
    assert match, f"memory limit {text!r} is not a size like 256M"
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _dotenv() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env line without '=': {line!r}"
            values[key.strip()] = value.strip()
    return values


@cache
def _compose_text() -> str:
    return COMPOSE_FILE.read_text()


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(_compose_text())
    return doc


def _compose_substituted() -> dict[str, Any]:
    """The compose file as compose sees it: ${VAR:-default} from .env, `$$` an escaped `$`."""
    env = _dotenv()
    text = _compose_text().replace("$$", "\0")
    doc: dict[str, Any] = yaml.safe_load(expand(text, env).replace("\0", "$"))
    return doc


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _edgeplane_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if name not in INFRA_SERVICES | {INIT_SERVICE}}


def _long_running() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _services().items() if name != INIT_SERVICE}


def _compose_schema() -> dict[str, Any]:
    text = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _members() -> dict[str, tuple[str, list[str]]]:
    """distribution name -> (project folder, dependency names) for every workspace member."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, tuple[str, list[str]]] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
            project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
            deps = [re.split(r"[\s\[<>=!~;]", d, maxsplit=1)[0] for d in project.get("dependencies", [])]
            members[project["name"]] = (folder.relative_to(ROOT).as_posix(), deps)
    return members


def _workspace_closure(project: str) -> set[str]:
    """The service's project folder plus every workspace project it depends on, transitively."""
    members = _members()
    by_folder = {folder: name for name, (folder, _) in members.items()}
    todo, seen = [by_folder[project]], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(d for d in members[name][1] if d in members)
    return {members[name][0] for name in seen}


def _module_exists(project: str, module: str) -> bool:
    base = ROOT / project / Path(*module.split("."))
    return (base / "__main__.py").is_file()


def _launcher_argv(service: Service) -> list[str]:
    return ["python", "-m", service.module, *(a.format(port=service.port) for a in service.args)]


# ---------------------------------------------------------------- the file as a whole


def test_compose_file_is_valid_against_the_compose_spec_schema() -> None:
    schema = _compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    for doc in (_compose(), _compose_substituted()):
        errors = sorted(validator_class(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_every_variable_the_compose_file_substitutes_has_a_default_and_is_in_dotenv() -> None:
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", _compose_text().replace("$$", "")))
    without_default = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", _compose_text().replace("$$", "")))
    assert not without_default, f"give these a default (${{VAR:-default}}): {sorted(without_default)}"
    assert used == set(_dotenv()), "docker-compose.yml's ${VARS} and .env's tunables differ"
    for name, value in _dotenv().items():
        defaults = set(re.findall(rf"\$\{{{name}:-([^}}]*)\}}", _compose_text()))
        assert defaults == {value}, f"{name}: .env says {value!r}, the compose defaults say {sorted(defaults)}"


def test_compose_services_are_the_launcher_services_plus_nats_and_redis() -> None:
    assert set(_services()) >= INFRA_SERVICES | {INIT_SERVICE}
    assert set(_edgeplane_services()) == {s.name for s in SERVICES}, (
        "docker-compose.yml and launcher/edgeplane/services.py must list the same services"
    )


def test_nats_runs_jetstream_on_a_volume() -> None:
    nats = _services()["nats"]
    assert nats["image"].startswith("nats:2.10")
    command = nats["command"]
    assert "-js" in command
    # Secure mode: the users, permissions and TLS of the generated configuration, in its own bundle.
    assert command[command.index("-c") + 1] == f"{BUNDLE_MOUNT}/nats/nats.conf"
    assert f"secure-nats:{BUNDLE_MOUNT}:ro" in nats["volumes"]
    store = command[command.index("-sd") + 1]
    assert any(v.split(":")[1] == store and v.split(":")[0] in _compose()["volumes"] for v in nats["volumes"])
    assert nats["ports"] == [f"${{HOST_BIND_ADDRESS:-127.0.0.1}}:${{HOST_PORT_NATS:-4222}}:{NATS.default_port}"]


def test_redis_runs_with_aof_on_a_volume() -> None:
    redis = _services()["redis"]
    assert redis["image"].startswith("redis:7")
    command = [str(a) for a in redis["command"]]
    assert command[command.index("--appendonly") + 1] == "yes"
    # Secure mode: ACL users from the generated file, and TLS only (no plain port).
    assert command[command.index("--aclfile") + 1] == f"{BUNDLE_MOUNT}/redis/users.acl"
    assert command[command.index("--port") + 1] == "0"
    assert command[command.index("--tls-port") + 1] == str(REDIS.default_port)
    assert f"secure-redis:{BUNDLE_MOUNT}:ro" in redis["volumes"]
    assert any(v.split(":")[1] == "/data" and v.split(":")[0] in _compose()["volumes"] for v in redis["volumes"])
    assert redis["ports"] == [f"${{HOST_BIND_ADDRESS:-127.0.0.1}}:${{HOST_PORT_REDIS:-6379}}:{REDIS.default_port}"]


@pytest.mark.parametrize("name", sorted(_long_running()))
def test_every_service_restarts_and_has_healthcheck_and_limits(name: str) -> None:
    svc = _services()[name]
    assert svc.get("restart") == "unless-stopped"
    health = svc.get("healthcheck")
    assert health, f"{name} has no healthcheck"
    assert health.get("test"), f"{name} has no healthcheck test"
    assert not health.get("disable")
    assert health["test"][0] in ("CMD", "CMD-SHELL")
    limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
    assert "cpus" in limits, f"{name} needs deploy.resources.limits.cpus"
    assert "memory" in limits, f"{name} needs deploy.resources.limits.memory"
    assert 0 < float(limits["cpus"]) <= MAX_CPUS_PER_SERVICE
    assert _memory_bytes(limits["memory"]) >= 64 * 2**20


def test_the_whole_stack_fits_a_2_core_2_gib_gateway() -> None:
    # What `docker compose up` starts: every service outside an opt-in profile (the exports need targets).
    # secure-init is left out: it has exited before the services it depends on start.
    default = [s for s in _long_running().values() if not s.get("profiles")]
    total = sum(_memory_bytes(s["deploy"]["resources"]["limits"]["memory"]) for s in default)
    assert total <= STACK_MEMORY_BUDGET, f"memory limits add up to {total / 2**20:.0f} MiB"


def test_only_the_export_app_services_are_opt_in() -> None:
    opt_in = {name for name, s in _services().items() if s.get("profiles")}
    assert opt_in == {"app-influx-export", "app-mqtt-export", "app-http-export"}
    assert all(_services()[name]["profiles"] == ["exports"] for name in opt_in)


def test_volumes_are_named_and_declared() -> None:
    declared = set(_compose().get("volumes", {}))
    used = {v.split(":")[0] for s in _long_running().values() for v in s.get("volumes", [])}
    assert used == declared, "every named volume is declared and used (no bind mounts of host folders)"


def test_secure_init_gives_each_container_its_own_bundle_and_nothing_else() -> None:
    init = _services()[INIT_SERVICE]
    assert init["restart"] == "no"  # one shot; rerun by every `up`, keeping what exists
    assert init["build"]["args"]["PROJECT"] == "launcher"
    command = init["command"]
    assert command[:5] == ["python", "-m", "edgeplane", "secure", "init"]
    options = dict(a.split("=", 1) for a in command[5:])
    assert options["--mount"] == BUNDLE_MOUNT
    assert options["--bundle-owner"] == str(SERVICE_UID)
    # The secure directory itself stays on the host (./.secure: the CA, the admin's password), never in git.
    assert f"./.secure:{options['--dir']}" in init["volumes"]
    assert ".secure/" in (ROOT / ".gitignore").read_text().split()
    bundles = {v.split(":")[0]: v.split(":")[1] for v in init["volumes"] if v.startswith("secure-")}
    for name in _long_running():
        assert bundles[f"secure-{name}"] == f"{options['--bundles']}/{name}"
        mounts = [v for v in _services()[name]["volumes"] if v.startswith("secure-")]
        assert mounts == [f"secure-{name}:{BUNDLE_MOUNT}:ro"], f"{name} mounts its own bundle only"
        if name not in INFRA_SERVICES:
            assert _services()[name]["depends_on"][INIT_SERVICE] == {"condition": "service_completed_successfully"}


# ---------------------------------------------------------------- each edgeplane service


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_command_is_the_launchers_entry_point(service: Service) -> None:
    svc = _edgeplane_services().get(service.name)
    assert svc is not None, f"{service.name} is missing from docker-compose.yml"
    assert svc["command"] == _launcher_argv(service) + CONTAINER_ARGS.get(service.name, [])
    assert _module_exists(service.project, service.module), f"python -m {service.module} has no __main__.py"


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_default_port_is_published_through_a_dotenv_tunable(service: Service) -> None:
    svc = _edgeplane_services()[service.name]
    variable = f"HOST_PORT_{service.name.upper().replace('-', '_')}"
    assert svc["ports"] == [f"${{HOST_BIND_ADDRESS:-127.0.0.1}}:${{{variable}:-{service.port}}}:{service.port}"]
    assert _dotenv()[variable] == str(service.port)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_environment_uses_the_launchers_variable_names(service: Service) -> None:
    env = {k: str(v) for k, v in _edgeplane_services()[service.name].get("environment", {}).items()}
    for key in env:
        assert key.startswith((service.env_prefix, SHARED_ENV_PREFIX)), (
            f"{service.name}: {key} is neither {service.env_prefix}* nor {SHARED_ENV_PREFIX}*"
        )
    if service.health == "http":
        assert env[service.port_env] == str(service.port)
    # What `edgeplane up --secure` gives every service (Stack.service_env), pointed at the containers: TLS to
    # NATS, Redis and core-metadata, and the service's own settings file from its bundle.
    assert env[NATS.url_env] == f"tls://{NATS.name}:{NATS.default_port}"
    assert env[REDIS.url_env] == f"rediss://{REDIS.name}:{REDIS.default_port}/0"
    metadata = by_name("core-metadata")
    assert env[METADATA_URL_ENV] == metadata.url(host=metadata.name, scheme="https")
    assert env[ENV_FILE_VAR] == f"{BUNDLE_MOUNT}/service.env"
    assert env[CA_FILE_ENV] == f"{BUNDLE_MOUNT}/ca.pem"
    assert env[LOG_JSON_ENV] == "true"
    for other in SERVICES:
        assert env[other.shared_port_env] == str(other.port)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_healthcheck_asks_the_services_readiness_inside_its_container(service: Service) -> None:
    test = _edgeplane_services()[service.name]["healthcheck"]["test"]
    # Readiness (/api/v3/health: 503 while a dependency is down), not ping: a service cut off from the bus
    # still answers ping.
    url = service.url(scheme="https") + HEALTH_PATH if service.health == "http" else service.ping_url()
    assert test == ["CMD", "python", "-m", HEALTHCHECK_MODULE, url]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_depends_on_what_it_talks_to_at_start_with_health_conditions(service: Service) -> None:
    depends = dict(_edgeplane_services()[service.name].get("depends_on", {}))
    assert isinstance(depends, dict), "depends_on as a map, with conditions"
    assert depends.pop(INIT_SERVICE) == {"condition": "service_completed_successfully"}
    assert all(d.get("condition") == "service_healthy" for d in depends.values())
    expected = set()
    if service.needs_nats:
        expected.add(NATS.name)
    if service.needs_redis:
        expected.add(REDIS.name)
    if service.health == "http" and service.name != "core-metadata":
        expected.add("core-metadata")  # every service but core-metadata reads metadata at start
    assert expected <= set(depends)
    assert set(depends) <= set(_services())


DOCKERFILE = ROOT / "Dockerfile"


def _build_args(service_name: str) -> dict[str, str]:
    build = _edgeplane_services()[service_name]["build"]
    assert build.get("context", ".") == ".", "build context is the repository root"
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile", "every image is built from the one Dockerfile"
    args: dict[str, str] = build.get("args", {})
    assert set(args) == {"PROJECT", "MODULE", "HEALTHCHECK_URL"}
    return args


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_image_is_built_from_the_services_project(service: Service) -> None:
    assert _build_args(service.name)["PROJECT"] == service.project


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_python_services_are_hardened(service: Service) -> None:
    svc = _edgeplane_services()[service.name]
    assert svc.get("read_only") is True
    assert "no-new-privileges:true" in svc.get("security_opt", [])


# ---------------------------------------------------------------- the Dockerfile


def _builds() -> dict[str, dict[str, str]]:
    """image name (without tag) -> its build args, for every service (each one builds)."""
    out: dict[str, dict[str, str]] = {}
    for name, svc in _edgeplane_services().items():  # the init's image checks no readiness: its own test
        image = svc["image"].rsplit(":", 1)[0]
        args = _build_args(name)
        assert out.setdefault(image, args) == args, f"{image} is built with two sets of build args"
    return out


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    instructions = _instructions(dockerfile)
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_the_dockerfile_follows_the_template() -> None:
    instructions = _instructions(DOCKERFILE)
    froms = [args.split()[0] for k, args in instructions if k == "FROM"]
    assert froms
    assert all(f == BASE_IMAGE for f in froms), f"every stage starts from {BASE_IMAGE}"

    final = dict(_final_stage(DOCKERFILE))  # last value per instruction in the final stage
    user = final.get("USER", "root").split(":")[0]
    assert user not in ("", "root", "0"), "the service runs as a non-root user"
    health = final.get("HEALTHCHECK", "")
    assert HEALTHCHECK_MODULE in health, "HEALTHCHECK runs edgeplane_common.healthcheck"
    assert "$EDGEPLANE_IMAGE_HEALTHCHECK_URL" in health, "HEALTHCHECK asks the build arg's URL"
    assert "EDGEPLANE_IMAGE_HEALTHCHECK_URL=${HEALTHCHECK_URL}" in final["ENV"]
    assert final["CMD"] == 'exec python -m "$EDGEPLANE_IMAGE_MODULE"'
    assert "EDGEPLANE_IMAGE_MODULE=${MODULE}" in final["ENV"]


@pytest.mark.parametrize("image", sorted(_builds()))
def test_image_build_args_name_a_module_of_the_project_and_the_readiness_check(image: str) -> None:
    args = _builds()[image]
    project, module = args["PROJECT"], args["MODULE"]
    assert _module_exists(project, module), f"MODULE {module} has no __main__.py in {project}"
    services_of_image = [n for n, s in _edgeplane_services().items() if s["image"].rsplit(":", 1)[0] == image]
    assert module in {_edgeplane_services()[n]["command"][2] for n in services_of_image}
    assert args["HEALTHCHECK_URL"].endswith(HEALTH_PATH), "HEALTHCHECK asks readiness at /api/v3/health"
    ports = {str(by_name(n).port) for n in services_of_image if by_name(n).health == "http"}
    assert urlsplit(args["HEALTHCHECK_URL"]).port is not None
    assert str(urlsplit(args["HEALTHCHECK_URL"]).port) in ports, "the HEALTHCHECK asks a service of this image"


@pytest.mark.parametrize("image", sorted(_builds()))
def test_the_image_installs_exactly_the_services_workspace_projects(image: str) -> None:
    project = _builds()[image]["PROJECT"]
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "workspace.py"), "closure", project],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert set(result.stdout.split()) == _workspace_closure(project)


def test_the_dockerfile_installs_the_closure_of_project_in_two_steps() -> None:
    """Third-party requirements first (from the pyproject files alone), then the local projects, each in one
    pip call over the folders the sources stage wrote; local projects without dependencies."""
    runs = [args for k, args in _instructions(DOCKERFILE) if k == "RUN"]
    assert any('scripts/workspace.py closure "$PROJECT"' in r for r in runs)
    installs = [r for r in runs if " install " in r]
    assert len(installs) == 2, "third-party requirements first, then the local projects"
    assert "workspace.py requirements $(cat folders)" in installs[0]
    assert "--no-deps $(cat folders)" in installs[1], "local projects without dependencies: none may come from an index"
    copies = [args for k, args in _instructions(DOCKERFILE) if k == "COPY"]
    assert copies.index("--from=sources /manifests/ /src/") < copies.index("--from=sources /projects/ /src/")


def test_dockerignore_keeps_local_state_out_and_sources_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for required in (".git", ".venv", ".tools", ".data", ".env", "**/__pycache__"):
        assert required in patterns, f".dockerignore should exclude {required}"
    sources = {folder for args in _builds().values() for folder in _workspace_closure(args["PROJECT"])}
    for pattern in patterns:
        if not pattern.startswith("!"):
            assert pattern.rstrip("/") not in sources, f".dockerignore excludes {pattern}, which an image copies"


def _load_smoke() -> ModuleType:
    return load_script("compose_smoke")


def test_the_smoke_run_asks_every_http_service_its_readiness() -> None:
    """compose_smoke finds what to ask from the healthchecks: when they moved from ping to health, it must not
    fall back to a bare TCP connect for the services."""
    smoke = _load_smoke()
    probes = smoke.probes(smoke.compose_doc())
    opt_in = {name for name, svc in _services().items() if svc.get("profiles")}
    assert opt_in
    assert not opt_in & set(probes)  # `compose up` does not start the opt-in profiles
    assert {name for name, (kind, _) in probes.items() if kind == "http"} == {
        s.name for s in SERVICES if s.health == "http" and s.name not in opt_in
    }
    assert {name for name, (kind, _) in probes.items() if kind == "tcp"} == INFRA_SERVICES | {
        s.name for s in SERVICES if s.health == "tcp"
    }
