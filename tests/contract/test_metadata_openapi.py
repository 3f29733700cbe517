"""core-metadata against the EdgeX v4.0.2 OpenAPI document (core-metadata.yaml), operation by operation.

Every response body is validated against the schema the EdgeX spec declares for its path, method and status
code (looked up programmatically: paths -> method -> responses -> status -> content application/json ->
schema) with a Draft 2020-12 validator whose `referencing` registry holds the whole spec file, so the
`#/components/schemas/...` references resolve inside it. Every JSON request body we send is validated
against the declared request schema as well, so the tests speak the spec's dialect and not a private one.

The EdgeX file is not strictly valid (see the last bullet of /work/shared/design.md); the few defects that matter are
patched, one by one and with the reason, in `_patch_spec_defects`, and
`test_spec_defects_are_exactly_the_known_ones` fails if the reference file ever changes under us.

Besides the schemas, the EdgeX semantics are asserted: 207 batches with one element per request element, in
order (201/200, 400 unknown profile or service, 404 unknown names, 409 duplicates), 404 unknown names,
409 deleting what is in use, 416 offsets past the end, limit=-1 returning all, `Content-Type` exactly
`application/json`, and `X-Correlation-ID` echoed when sent and generated (a UUID) when not.
"""

from __future__ import annotations

import copy
import json
import tomllib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.support.metadata import OPENAPI, SAMPLES
from tests.support.openapi import OpenApiSpec, load_spec, undefined_required

SPEC_FILE = OPENAPI / "core-metadata.yaml"
SPEC_URI = "urn:edgex:v4.0.2:core-metadata"
PREFIX = "/api/v3"
METHODS = ("get", "post", "put", "patch", "delete")
MODBUS_PROFILE = SAMPLES / "modbus" / "modbus.test.device.profile.yml"
MODBUS_PROFILE_NAME = "Test-Device-Modbus-Profile"


# The spec's internal defects, exactly. Each is patched below; nothing else is relaxed.
KNOWN_UNDEFINED_REQUIRED = {
    # EdgeX v3 renamed AutoEvent.resource to sourceName; `required` still says `resource`, which no AutoEvent
    # (in the spec's own examples, the EdgeX samples or from EdgeX itself) carries. Patched: require sourceName.
    "AutoEvent": {"resource"},
    # The basic-info request carries `basicinfo`, not `profileName` (see the spec's own request example).
    # Only a request schema; patched: `required: [basicinfo]`.
    "DeviceProfileBasicInfoRequest": {"profileName"},
    # v3 moved serviceName from DiscoveredDevice up to ProvisionWatcher; `required` was not updated.
    # Patched: dropped from DiscoveredDevice (the watcher tests assert serviceName on the watcher itself).
    "DiscoveredDevice": {"serviceName"},
}


def _patch_spec_defects(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    schemas["AutoEvent"]["required"] = ["interval", "sourceName"]
    schemas["DeviceProfileBasicInfoRequest"]["required"] = ["basicinfo"]
    schemas["DiscoveredDevice"]["required"] = ["adminState"]
    # DeviceResource.attributes says `additionalProperties: {type: string}`, but EdgeX's model is
    # map[string]any and EdgeX's own sample profiles (device-modbus-go) carry numbers, e.g.
    # `startingAddress: 0`, which EdgeX returns as JSON numbers. Only this one map is opened up.
    schemas["DeviceResource"]["properties"]["attributes"]["additionalProperties"] = {}
    # PATCH /deviceservice and PATCH /provisionwatcher declare one object as the request body, while EdgeX
    # (and the spec's own examples right there) take an array of them, like every other batch operation.
    for path in ("/deviceservice", "/provisionwatcher"):
        body = spec["paths"][path]["patch"]["requestBody"]["content"]["application/json"]
        body["schema"] = {"type": "array", "items": body["schema"]}
    return spec


RAW_SPEC = load_spec(SPEC_FILE)
SPEC = _patch_spec_defects(RAW_SPEC)
OPENAPI_SPEC = OpenApiSpec(SPEC, SPEC_URI)
# Operations of the spec: (METHOD, template) -> compiled path regex.
OPERATIONS = OPENAPI_SPEC.operations
validator_for = OPENAPI_SPEC.validator_for
assert_valid = OPENAPI_SPEC.assert_valid
template_of = OPENAPI_SPEC.template_of

# Status codes EdgeX answers with that the spec forgets to declare for an operation; validated as
# ErrorResponse. Anything else undeclared fails the test.
UNDECLARED_ERRORS: dict[tuple[str, str], set[int]] = {
    # Tags of an unknown profile, device resource or device command: EdgeX answers 404 (EntityDoesNotExist).
    ("PATCH", "/deviceprofile/name/{name}/tags"): {404},
    # Replacing (PUT) a profile file whose profile does not exist: 404, as PUT /deviceprofile per element.
    ("PUT", "/deviceprofile/uploadfile"): {404},
}

EXERCISED: set[tuple[str, str]] = set()
_RAN: set[str] = set()


def response_schema_parts(method: str, template: str, status: int) -> tuple[str, ...]:
    responses = SPEC["paths"][template][method.lower()]["responses"]
    if str(status) in responses:
        content = responses[str(status)]["content"]
        assert "application/json" in content, f"{method} {template} {status} declares no application/json"
        return ("paths", template, method.lower(), "responses", str(status), "content", "application/json", "schema")
    assert status in UNDECLARED_ERRORS.get((method, template), set()), (
        f"{method} {template} answered {status}, which core-metadata.yaml does not declare "
        f"(declared: {sorted(responses)})"
    )
    return ("components", "schemas", "ErrorResponse")


class Api:
    """Calls core-metadata and checks what every response must satisfy, then returns the JSON body.

    Every other request sends an `X-Correlation-ID` (it must come back unchanged); the others send none
    (a fresh UUID must come back)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.calls = 0
        self.generated: set[str] = set()

    async def call(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        template = template_of(method, path)
        if json_body is not None:
            assert_valid(
                json_body, "paths", template, method.lower(), "requestBody", "content", "application/json", "schema"
            )
        self.calls += 1
        sent_cid = str(uuid.uuid4()) if self.calls % 2 else None
        hdrs = dict(headers or {})
        if sent_cid:
            hdrs["X-Correlation-ID"] = sent_cid
        r = await self.client.request(method, PREFIX + path, json=json_body, params=params, files=files, headers=hdrs)
        assert r.status_code == expect, f"{method} {path}: expected {expect}, got {r.status_code}: {r.text}"
        cid = r.headers.get("x-correlation-id")
        if sent_cid:
            assert cid == sent_cid, f"{method} {path}: X-Correlation-ID {cid!r} is not the {sent_cid!r} sent"
        else:
            assert cid is not None, f"{method} {path}: no X-Correlation-ID generated"
            assert str(uuid.UUID(cid)) == cid.lower(), f"generated id {cid!r} is no UUID"
            assert cid not in self.generated, "a generated X-Correlation-ID was reused"
            self.generated.add(cid)
        assert r.headers["content-type"] == "application/json", f"{method} {path}: {r.headers['content-type']}"
        body = r.json()
        assert_valid(body, *response_schema_parts(method, template, r.status_code))
        EXERCISED.add((method, template))
        return body

    async def get(self, path: str, expect: int = 200, **params: Any) -> Any:
        return await self.call("GET", path, expect, params=params or None)

    async def delete(self, path: str, expect: int = 200) -> Any:
        return await self.call("DELETE", path, expect)

    async def batch(
        self, method: str, path: str, items: list[dict[str, Any]], statuses: list[int], **params: Any
    ) -> list[dict[str, Any]]:
        """A batch request: 207, one element per request element, in order, with the expected statusCodes."""
        body = await self.call(method, path, 207, json_body=items, params=params or None)
        assert [e.get("statusCode") for e in body] == statuses, body
        assert [e.get("requestId") for e in body] == [i.get("requestId") for i in items], "order/requestId lost"
        for element in body:
            if element["statusCode"] >= 400:
                assert element.get("message"), f"an error element says nothing: {element}"
        return list(body)


def req(key: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v3", "requestId": str(uuid.uuid4()), key: value, **extra}


def service(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} service",
        "baseAddress": f"http://{name}:59999",
        "adminState": "UNLOCKED",
        "labels": ["edge"],
        **extra,
    }


def profile(name: str, *, manufacturer: str = "Acme", model: str = "T-100", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "a thermostat",
        "manufacturer": manufacturer,
        "model": model,
        "labels": ["hvac", name],
        "deviceResources": [
            {
                "name": "Temperature",
                "description": "room temperature",
                "isHidden": False,
                "properties": {
                    "valueType": "Float32",
                    "readWrite": "R",
                    "units": "degC",
                    "minimum": -40,
                    "maximum": 125,
                },
                "attributes": {"register": "1"},
            },
            {
                "name": "Setpoint",
                "description": "target",
                "isHidden": False,
                "properties": {"valueType": "Int16", "readWrite": "RW", "defaultValue": "21"},
                "attributes": {"register": "2"},
            },
        ],
        "deviceCommands": [
            {
                "name": "Climate",
                "readWrite": "R",
                "isHidden": False,
                "resourceOperations": [{"deviceResource": "Temperature"}, {"deviceResource": "Setpoint"}],
            },
        ],
        **extra,
    }


def device(name: str, service_name: str, profile_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"device {name}",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "labels": ["floor1"],
        "serviceName": service_name,
        "profileName": profile_name,
        "protocols": {"modbus-tcp": {"Address": "10.0.0.7", "Port": 502, "UnitID": 1}},
        "autoEvents": [{"interval": "10s", "onChange": True, "sourceName": "Temperature"}],
        **extra,
    }


def watcher(name: str, service_name: str, profile_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "serviceName": service_name,
        "labels": ["discovery"],
        "adminState": "UNLOCKED",
        "identifiers": {"Address": r"10\.0\.0\..*", "Port": "502"},
        "blockingIdentifiers": {"Port": ["23"]},
        "discoveredDevice": {
            "profileName": profile_name,
            "adminState": "LOCKED",
            "autoEvents": [{"interval": "30s", "sourceName": "Temperature"}],
            "properties": {"site": "A"},
        },
        **extra,
    }


def names(items: list[dict[str, Any]]) -> list[str]:
    return [i["name"] for i in items]


@pytest.fixture(autouse=True)
def _record_run(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    _RAN.add(request.node.originalname)


@pytest.fixture
def api(metadata: httpx.AsyncClient) -> Api:
    return Api(metadata)


async def seed(api: Api, *, services: tuple[str, ...] = ("svc-a",), profiles: tuple[str, ...] = ("thermo",)) -> None:
    if services:
        await api.batch("POST", "/deviceservice", [req("service", service(s)) for s in services], [201] * len(services))
    if profiles:
        await api.batch("POST", "/deviceprofile", [req("profile", profile(p)) for p in profiles], [201] * len(profiles))


def test_spec_defects_are_exactly_the_known_ones() -> None:
    assert undefined_required(RAW_SPEC) == KNOWN_UNDEFINED_REQUIRED
    assert undefined_required(SPEC) == {}
    # The patches change nothing else: every other component schema is byte-for-byte the spec's.
    patched = {"AutoEvent", "DeviceProfileBasicInfoRequest", "DiscoveredDevice", "DeviceResource"}
    raw, fixed = RAW_SPEC["components"]["schemas"], SPEC["components"]["schemas"]
    assert {n for n in raw if raw[n] != fixed[n]} == patched
    # The patched spec still rejects what it must: an AutoEvent without sourceName, a non-UUID id.
    assert list(validator_for("components", "schemas", "AutoEvent").iter_errors({"interval": "1s"}))
    assert list(validator_for("components", "schemas", "BaseWithIdResponse").iter_errors({"id": "nope"}))
    assert list(
        validator_for("components", "schemas", "MultiDevicesResponse").iter_errors(
            {"devices": [{"name": "d", "adminState": "SLEEPY"}]}
        )
    )


async def test_device_services(api: Api) -> None:
    first = await api.batch(
        "POST",
        "/deviceservice",
        [
            req("service", service("svc-a")),
            req("service", service("svc-b", labels=["edge", "lab"])),
            req("service", service("svc-a")),
        ],
        [201, 201, 409],
    )
    ids = [e.get("id") for e in first]
    assert ids[0]
    assert ids[1]
    assert ids[0] != ids[1]
    assert "id" not in first[2]
    await api.call("POST", "/deviceservice", 400, json_body=[])
    got = await api.get("/deviceservice/name/svc-a")
    assert got["service"]["id"] == ids[0]
    assert got["service"]["baseAddress"] == "http://svc-a:59999"
    assert got["service"]["created"] > 0
    assert got["service"]["modified"] >= got["service"]["created"]
    await api.get("/deviceservice/name/ghost", 404)

    patched = await api.batch(
        "PATCH",
        "/deviceservice",
        [
            req("service", {"name": "svc-a", "description": "patched", "adminState": "LOCKED"}),
            req("service", {"name": "ghost", "description": "x"}),
            req("service", {"id": ids[1], "labels": ["renewed"]}),
        ],
        [200, 404, 200],
    )
    assert len(patched) == 3
    got = (await api.get("/deviceservice/name/svc-a"))["service"]
    assert (got["description"], got["adminState"], got["baseAddress"]) == ("patched", "LOCKED", "http://svc-a:59999")
    assert (await api.get("/deviceservice/name/svc-b"))["service"]["labels"] == ["renewed"]

    every = await api.get("/deviceservice/all")
    assert every["totalCount"] == 2
    assert names(every["services"]) == ["svc-a", "svc-b"]
    only = await api.get("/deviceservice/all", labels="renewed")
    assert only["totalCount"] == 1
    assert names(only["services"]) == ["svc-b"]
    await api.get("/deviceservice/all", 416, offset=2)

    await api.delete("/deviceservice/name/svc-b")
    await api.delete("/deviceservice/name/svc-b", 404)
    await api.get("/deviceservice/name/svc-b", 404)


async def test_paging_limit_minus_one_and_416(api: Api) -> None:
    many = [f"svc-{i:02d}" for i in range(25)]
    body = await api.batch("POST", "/deviceservice", [req("service", service(n)) for n in many], [201] * 25)
    assert len(body) == 25
    default = await api.get("/deviceservice/all")
    assert default["totalCount"] == 25
    assert names(default["services"]) == many[:20]
    every = await api.get("/deviceservice/all", limit=-1)
    assert every["totalCount"] == 25
    assert names(every["services"]) == many
    page = await api.get("/deviceservice/all", offset=20, limit=3)
    assert names(page["services"]) == many[20:23]
    tail = await api.get("/deviceservice/all", offset=24, limit=-1)
    assert names(tail["services"]) == many[24:]
    await api.get("/deviceservice/all", 416, offset=25)
    await api.get("/deviceservice/all", 400, offset=-1)
    await api.get("/deviceservice/all", 400, limit=-2)
    empty = await api.get("/deviceprofile/all")
    assert empty["totalCount"] == 0
    assert empty.get("profiles", []) == []


async def test_device_profiles(api: Api) -> None:
    broken = profile("broken")
    broken["deviceCommands"][0]["resourceOperations"].append({"deviceResource": "NoSuchResource"})
    added = await api.batch(
        "POST",
        "/deviceprofile",
        [
            req("profile", profile("thermo")),
            req("profile", profile("boiler", manufacturer="Heatco", model="B1")),
            req("profile", profile("thermo")),
        ],
        [201, 201, 409],
    )
    assert added[0]["id"] != added[1]["id"]
    # A profile that contradicts itself fails EdgeX's DTO validation: the whole request is a 400, nothing stored.
    refused = await api.call(
        "POST", "/deviceprofile", 400, json_body=[req("profile", profile("spare")), req("profile", broken)]
    )
    assert "NoSuchResource" in refused["message"]
    await api.get("/deviceprofile/name/broken", 404)
    await api.get("/deviceprofile/name/spare", 404)

    got = (await api.get("/deviceprofile/name/thermo"))["profile"]
    assert got["id"] == added[0]["id"]
    assert names(got["deviceResources"]) == ["Temperature", "Setpoint"]
    assert names(got["deviceCommands"]) == ["Climate"]
    assert got["deviceResources"][0]["properties"]["minimum"] == -40
    assert got["deviceResources"][1]["attributes"] == {"register": "2"}
    await api.get("/deviceprofile/name/ghost", 404)

    changed = profile("thermo", description="replaced")
    changed["deviceResources"].pop()  # Setpoint goes, so Climate must go with it
    changed["deviceCommands"][0]["resourceOperations"] = [{"deviceResource": "Temperature"}]
    await api.batch("PUT", "/deviceprofile", [req("profile", changed), req("profile", profile("ghost"))], [200, 404])
    got = (await api.get("/deviceprofile/name/thermo"))["profile"]
    assert got["description"] == "replaced"
    assert names(got["deviceResources"]) == ["Temperature"]
    assert got["id"] == added[0]["id"]
    assert got["modified"] >= got["created"]

    # basic info: one field patched, the rest (and the resources) untouched
    await api.batch(
        "PATCH",
        "/deviceprofile/basicinfo",
        [
            req("basicinfo", {"name": "boiler", "manufacturer": "NewHeat", "labels": ["boilers"]}),
            req("basicinfo", {"name": "ghost", "model": "X"}),
        ],
        [200, 404],
    )
    boiler = (await api.get("/deviceprofile/name/boiler"))["profile"]
    assert (boiler["manufacturer"], boiler["model"], boiler["labels"]) == ("NewHeat", "B1", ["boilers"])
    assert names(boiler["deviceResources"]) == ["Temperature", "Setpoint"]
    infos = await api.get("/deviceprofile/basicinfo/all")
    assert infos["totalCount"] == 2
    assert names(infos["profiles"]) == ["boiler", "thermo"]
    assert all("deviceResources" not in p for p in infos["profiles"])
    assert [p["linkedDeviceCount"] for p in infos["profiles"]] == [0, 0]
    labelled = await api.get("/deviceprofile/basicinfo/all", labels="boilers")
    assert names(labelled["profiles"]) == ["boiler"]
    await api.get("/deviceprofile/basicinfo/all", 416, offset=2)

    # queries
    every = await api.get("/deviceprofile/all", limit=-1)
    assert every["totalCount"] == 2
    assert names(every["profiles"]) == ["boiler", "thermo"]
    assert names((await api.get("/deviceprofile/all", labels="hvac,thermo"))["profiles"]) == ["thermo"]
    await api.get("/deviceprofile/all", 416, offset=2)
    assert names((await api.get("/deviceprofile/manufacturer/NewHeat"))["profiles"]) == ["boiler"]
    assert (await api.get("/deviceprofile/manufacturer/Nobody"))["totalCount"] == 0
    await api.get("/deviceprofile/manufacturer/NewHeat", 416, offset=1)
    assert names((await api.get("/deviceprofile/model/T-100"))["profiles"]) == ["thermo"]
    await api.get("/deviceprofile/model/T-100", 416, offset=5)
    both = await api.get("/deviceprofile/manufacturer/NewHeat/model/B1")
    assert both["totalCount"] == 1
    assert names(both["profiles"]) == ["boiler"]
    assert (await api.get("/deviceprofile/manufacturer/NewHeat/model/T-100"))["totalCount"] == 0
    await api.get("/deviceprofile/manufacturer/NewHeat/model/B1", 416, offset=1)

    await api.delete("/deviceprofile/name/boiler")
    await api.delete("/deviceprofile/name/boiler", 404)
    await api.get("/deviceprofile/name/boiler", 404)


async def test_profile_upload_file(api: Api) -> None:
    content = MODBUS_PROFILE.read_bytes()
    created = await api.call(
        "POST", "/deviceprofile/uploadfile", 201, files={"file": (MODBUS_PROFILE.name, content, "application/x-yaml")}
    )
    assert created["statusCode"] == 201
    assert created["id"]
    await api.call(
        "POST", "/deviceprofile/uploadfile", 409, files={"file": (MODBUS_PROFILE.name, content, "application/x-yaml")}
    )
    await api.call(
        "POST",
        "/deviceprofile/uploadfile",
        400,
        files={"file": ("bad.yml", b"name: [unclosed\n", "application/x-yaml")},
    )
    await api.call(
        "POST",
        "/deviceprofile/uploadfile",
        400,
        files={"file": ("list.yml", b"- just\n- a list\n", "application/x-yaml")},
    )
    got = (await api.get(f"/deviceprofile/name/{MODBUS_PROFILE_NAME}"))["profile"]
    in_file = yaml.safe_load(content)["deviceResources"]
    assert got["id"] == created["id"]
    assert names(got["deviceResources"]) == names(in_file)
    assert got["deviceResources"][0]["attributes"] == {"primaryTable": "COILS", "startingAddress": 0}

    data = yaml.safe_load(content)
    data["description"] = "replaced by PUT uploadfile"
    data["deviceResources"] = [r for r in data["deviceResources"] if r["name"] != "SwitchB"]
    for cmd in data["deviceCommands"]:
        cmd["resourceOperations"] = [o for o in cmd["resourceOperations"] if o["deviceResource"] != "SwitchB"]
    replaced = await api.call(
        "PUT",
        "/deviceprofile/uploadfile",
        200,
        files={"file": ("p.yml", yaml.safe_dump(data).encode(), "application/x-yaml")},
    )
    assert replaced["statusCode"] == 200
    got = (await api.get(f"/deviceprofile/name/{MODBUS_PROFILE_NAME}"))["profile"]
    assert got["description"] == "replaced by PUT uploadfile"
    assert got["id"] == created["id"]
    assert names(got["deviceResources"]) == [n for n in names(in_file) if n != "SwitchB"]

    data["name"] = "not-there"
    await api.call(
        "PUT",
        "/deviceprofile/uploadfile",
        404,
        files={"file": ("p.yml", yaml.safe_dump(data).encode(), "application/x-yaml")},
    )
    await api.call(
        "PUT",
        "/deviceprofile/uploadfile",
        400,
        files={"file": ("p.yml", b"name: x\ndeviceResources: 7\n", "application/x-yaml")},
    )


async def test_profile_resources_commands_and_tags(api: Api) -> None:
    await seed(api, services=(), profiles=("thermo",))

    # tags
    await api.call(
        "PATCH",
        "/deviceprofile/name/thermo/tags",
        200,
        json_body={
            "apiVersion": "v3",
            "requestId": str(uuid.uuid4()),
            "deviceResources": [{"name": "Temperature", "tags": {"field": "temp"}}],
            "deviceCommands": [{"name": "Climate", "tags": {"group": "climate"}}],
        },
    )
    res = await api.get("/deviceresource/profile/thermo/resource/Temperature")
    assert res["resource"]["tags"] == {"field": "temp"}
    assert res["resource"]["properties"]["valueType"] == "Float32"
    got = (await api.get("/deviceprofile/name/thermo"))["profile"]
    assert got["deviceCommands"][0]["tags"] == {"group": "climate"}
    await api.call(
        "PATCH",
        "/deviceprofile/name/thermo/tags",
        404,
        json_body={"apiVersion": "v3", "deviceResources": [{"name": "NoSuch", "tags": {"a": "b"}}]},
    )
    await api.call(
        "PATCH",
        "/deviceprofile/name/ghost/tags",
        404,
        json_body={"apiVersion": "v3", "deviceResources": [{"name": "Temperature", "tags": {"a": "b"}}]},
    )
    await api.get("/deviceresource/profile/thermo/resource/NoSuch", 404)
    await api.get("/deviceresource/profile/ghost/resource/Temperature", 404)

    # device resources
    humidity = {
        "name": "Humidity",
        "description": "relative humidity",
        "properties": {"valueType": "Uint8", "readWrite": "R", "units": "%"},
        "attributes": {"register": "3"},
    }
    await api.batch(
        "POST",
        "/deviceprofile/resource",
        [
            req("resource", humidity, profileName="thermo"),
            req("resource", humidity, profileName="thermo"),
            req("resource", humidity, profileName="ghost"),
            req(
                "resource",
                {"name": "Bad", "properties": {"valueType": "Binary", "readWrite": "RW"}},
                profileName="thermo",
            ),
        ],
        [201, 400, 404, 400],
    )
    got = (await api.get("/deviceresource/profile/thermo/resource/Humidity"))["resource"]
    assert got["properties"]["units"] == "%"
    assert got["attributes"] == {"register": "3"}
    await api.batch(
        "PATCH",
        "/deviceprofile/resource",
        [
            req("resource", {"name": "Humidity", "description": "RH", "isHidden": True}, profileName="thermo"),
            req("resource", {"name": "NoSuch", "isHidden": True}, profileName="thermo"),
            req("resource", {"name": "Humidity", "isHidden": True}, profileName="ghost"),
        ],
        [200, 404, 404],
    )
    got = (await api.get("/deviceresource/profile/thermo/resource/Humidity"))["resource"]
    assert (got["description"], got["isHidden"], got["properties"]["valueType"]) == ("RH", True, "Uint8")

    # device commands
    command = {
        "name": "Comfort",
        "readWrite": "R",
        "isHidden": False,
        "resourceOperations": [{"deviceResource": "Temperature"}, {"deviceResource": "Humidity"}],
    }
    await api.batch(
        "POST",
        "/deviceprofile/deviceCommand",
        [
            req("deviceCommand", command, profileName="thermo"),
            req("deviceCommand", command, profileName="thermo"),
            req("deviceCommand", command, profileName="ghost"),
            req(
                "deviceCommand",
                {**command, "name": "Dangling", "resourceOperations": [{"deviceResource": "NoSuch"}]},
                profileName="thermo",
            ),
            # a writable command over a read-only resource
            req(
                "deviceCommand",
                {
                    **command,
                    "name": "WriteTemp",
                    "readWrite": "W",
                    "resourceOperations": [{"deviceResource": "Temperature"}],
                },
                profileName="thermo",
            ),
        ],
        [201, 400, 404, 400, 400],
    )
    await api.batch(
        "PATCH",
        "/deviceprofile/deviceCommand",
        [
            req("deviceCommand", {"name": "Comfort", "isHidden": True}, profileName="thermo"),
            req("deviceCommand", {"name": "NoSuch", "isHidden": True}, profileName="thermo"),
        ],
        [200, 404],
    )
    got = (await api.get("/deviceprofile/name/thermo"))["profile"]
    comfort = next(c for c in got["deviceCommands"] if c["name"] == "Comfort")
    assert comfort["isHidden"] is True
    assert [o["deviceResource"] for o in comfort["resourceOperations"]] == ["Temperature", "Humidity"]

    # a resource a command uses cannot go (400: the profile would be invalid, as EdgeX); the command can, then
    # the resource can
    await api.delete("/deviceprofile/name/thermo/resource/Humidity", 400)
    await api.delete("/deviceprofile/name/thermo/deviceCommand/Comfort")
    await api.delete("/deviceprofile/name/thermo/deviceCommand/Comfort", 404)
    await api.delete("/deviceprofile/name/ghost/deviceCommand/Climate", 404)
    await api.delete("/deviceprofile/name/thermo/resource/Humidity")
    await api.delete("/deviceprofile/name/thermo/resource/Humidity", 404)
    got = (await api.get("/deviceprofile/name/thermo"))["profile"]
    assert names(got["deviceResources"]) == ["Temperature", "Setpoint"]
    assert names(got["deviceCommands"]) == ["Climate"]


async def test_devices(api: Api) -> None:
    await seed(api, services=("svc-a", "svc-b"), profiles=("thermo", "spare"))
    added = await api.batch(
        "POST",
        "/device",
        [
            req("device", device("d1", "svc-a", "thermo", labels=["floor1", "north"])),
            req("device", device("d2", "svc-a", "thermo", parent="d1")),
            req("device", device("d3", "svc-b", "thermo", parent="d2", labels=["floor2"])),
            req("device", device("d1", "svc-a", "thermo")),
            req("device", device("d4", "svc-a", "no-such-profile")),
            req("device", device("d5", "no-such-service", "thermo")),
            req("device", device("d6", "svc-a", "thermo", autoEvents=[{"interval": "1s", "sourceName": "NoSuch"}])),
        ],
        [201, 201, 201, 409, 400, 400, 400],
        bypassValidation="true",
    )
    d1_id = added[0]["id"]

    # without bypassValidation and no device service running, the device is stored (EdgeX would 503)
    await api.batch("POST", "/device", [req("device", device("d7", "svc-a", "thermo"))], [201])

    got = (await api.get("/device/name/d1"))["device"]
    assert got["id"] == d1_id
    assert got["protocols"]["modbus-tcp"] == {"Address": "10.0.0.7", "Port": 502, "UnitID": 1}
    assert got["autoEvents"] == [{"interval": "10s", "onChange": True, "sourceName": "Temperature"}]
    assert (await api.get(f"/device/id/{d1_id}"))["device"]["name"] == "d1"
    await api.get(f"/device/id/{uuid.uuid4()}", 404)
    await api.get("/device/name/ghost", 404)
    assert (await api.get("/device/check/name/d1"))["statusCode"] == 200
    await api.get("/device/check/name/ghost", 404)

    # force replaces a device whose name exists
    await api.batch(
        "POST",
        "/device",
        [req("device", device("d7", "svc-a", "spare", description="forced"))],
        [201],
        force="true",
        bypassValidation="true",
    )
    forced = (await api.get("/device/name/d7"))["device"]
    assert (forced["description"], forced["profileName"]) == ("forced", "spare")

    await api.batch(
        "PATCH",
        "/device",
        [
            req("device", {"name": "d7", "description": "patched", "operatingState": "DOWN"}),
            req("device", {"name": "ghost", "description": "x"}),
            req("device", {"name": "d7", "profileName": "no-such-profile"}),
            req("device", {"id": d1_id, "labels": ["floor1", "north", "east"]}),
        ],
        [200, 404, 400, 200],
        bypassValidation="true",
    )
    d7 = (await api.get("/device/name/d7"))["device"]
    assert (d7["description"], d7["operatingState"], d7["profileName"]) == ("patched", "DOWN", "spare")
    assert (await api.get("/device/name/d1"))["device"]["labels"] == ["floor1", "north", "east"]

    # queries
    every = await api.get("/device/all", limit=-1)
    assert every["totalCount"] == 4
    assert names(every["devices"]) == ["d1", "d2", "d3", "d7"]
    assert names((await api.get("/device/all", labels="floor1,north"))["devices"]) == ["d1"]
    tree = await api.get("/device/all", descendantsOf="d1")
    assert tree["totalCount"] == 2
    assert names(tree["devices"]) == ["d2", "d3"]
    assert names((await api.get("/device/all", descendantsOf="d1", maxLevels=1))["devices"]) == ["d2"]
    # labels filter each level of the walk, as EdgeX's deviceSubTree does: d3 (floor2) hangs below d2
    assert names((await api.get("/device/all", descendantsOf="d1", labels="floor1"))["devices"]) == ["d2"]
    assert (await api.get("/device/all", descendantsOf="d1", labels="floor2"))["totalCount"] == 0
    await api.get("/device/all", 416, offset=4)
    await api.get("/device/all", 416, descendantsOf="d1", offset=2)
    by_profile = await api.get("/device/profile/name/thermo")
    assert names(by_profile["devices"]) == ["d1", "d2", "d3"]
    await api.get("/device/profile/name/thermo", 416, offset=3)
    assert (await api.get("/device/profile/name/ghost"))["totalCount"] == 0
    assert names((await api.get("/device/service/name/svc-b"))["devices"]) == ["d3"]
    assert names((await api.get("/device/service/name/svc-a", limit=1, offset=1))["devices"]) == ["d2"]
    await api.get("/device/service/name/svc-b", 416, offset=1)
    assert (await api.get("/deviceprofile/name/thermo"))["profile"]["linkedDeviceCount"] == 3

    # in use: neither the profile nor the service can go
    await api.delete("/deviceprofile/name/thermo", 409)
    await api.delete("/deviceservice/name/svc-b", 409)
    await api.delete("/device/name/d3")
    await api.delete("/device/name/d3", 404)
    await api.get("/device/name/d3", 404)
    await api.delete("/deviceservice/name/svc-b")


async def test_provision_watchers(api: Api) -> None:
    await seed(api, services=("svc-a", "svc-b"), profiles=("thermo", "spare"))
    added = await api.batch(
        "POST",
        "/provisionwatcher",
        [
            req("provisionwatcher", watcher("pw1", "svc-a", "thermo")),
            req("provisionwatcher", watcher("pw2", "svc-b", "spare", labels=["discovery", "lab"])),
            req("provisionwatcher", watcher("pw1", "svc-a", "thermo")),
            req("provisionwatcher", watcher("pw3", "no-such-service", "thermo")),
            req("provisionwatcher", watcher("pw4", "svc-a", "no-such-profile")),
        ],
        # As EdgeX 4: a watcher may name a service that registers later; an unknown profile is a 404.
        [201, 201, 409, 201, 404],
    )
    await api.delete("/provisionwatcher/name/pw3")
    got = (await api.get("/provisionwatcher/name/pw1"))["provisionWatcher"]
    assert got["id"] == added[0]["id"]
    assert got["serviceName"] == "svc-a"
    assert got["identifiers"] == {"Address": r"10\.0\.0\..*", "Port": "502"}
    assert got["blockingIdentifiers"] == {"Port": ["23"]}
    assert got["discoveredDevice"]["profileName"] == "thermo"
    assert got["discoveredDevice"]["adminState"] == "LOCKED"
    assert got["discoveredDevice"]["autoEvents"][0]["sourceName"] == "Temperature"
    await api.get("/provisionwatcher/name/ghost", 404)

    await api.batch(
        "PATCH",
        "/provisionwatcher",
        [
            req(
                "provisionwatcher",
                {"name": "pw1", "labels": ["changed"], "discoveredDevice": {"adminState": "UNLOCKED"}},
            ),
            req("provisionwatcher", {"name": "ghost", "labels": []}),
            req("provisionwatcher", {"name": "pw2", "discoveredDevice": {"profileName": "no-such-profile"}}),
        ],
        [200, 404, 404],
    )
    got = (await api.get("/provisionwatcher/name/pw1"))["provisionWatcher"]
    assert got["labels"] == ["changed"]
    assert got["discoveredDevice"]["adminState"] == "UNLOCKED"
    assert got["discoveredDevice"]["profileName"] == "thermo", "a partial discoveredDevice patch lost fields"

    every = await api.get("/provisionwatcher/all", limit=-1)
    assert every["totalCount"] == 2
    assert names(every["provisionWatchers"]) == ["pw1", "pw2"]
    assert names((await api.get("/provisionwatcher/all", labels="lab"))["provisionWatchers"]) == ["pw2"]
    await api.get("/provisionwatcher/all", 416, offset=2)
    assert names((await api.get("/provisionwatcher/service/name/svc-b"))["provisionWatchers"]) == ["pw2"]
    await api.get("/provisionwatcher/service/name/svc-b", 416, offset=1)
    assert names((await api.get("/provisionwatcher/profile/name/thermo"))["provisionWatchers"]) == ["pw1"]
    await api.get("/provisionwatcher/profile/name/thermo", 416, offset=1)

    # a watcher keeps its service and profile in use
    await api.delete("/deviceservice/name/svc-b", 409)
    await api.delete("/deviceprofile/name/spare", 409)
    await api.delete("/provisionwatcher/name/pw2")
    await api.delete("/provisionwatcher/name/pw2", 404)
    await api.get("/provisionwatcher/name/pw2", 404)
    await api.delete("/deviceprofile/name/spare")
    await api.delete("/deviceservice/name/svc-b")


async def test_system_endpoints(api: Api, metadata: httpx.AsyncClient) -> None:
    ping = await api.get("/ping")
    assert ping["apiVersion"] == "v3"
    assert ping["serviceName"] == "core-metadata"
    assert ping["timestamp"]
    version = await api.get("/version")
    assert version["apiVersion"] == "v3"
    assert version["version"]
    config = await api.get("/config")
    assert config["serviceName"] == "core-metadata"
    assert isinstance(config["config"], dict)
    created = await api.call(
        "POST",
        "/secret",
        201,
        json_body={
            "apiVersion": "v3",
            "requestId": str(uuid.uuid4()),
            "secretName": "credentials",
            "secretData": [{"key": "username", "value": "edge"}, {"key": "password", "value": "s3cr3t"}],
        },
    )
    assert created["statusCode"] == 201
    assert "s3cr3t" not in json.dumps(await api.get("/config")), "a stored secret leaked into /config"
    await api.call("POST", "/secret", 400, json_body={"apiVersion": "v3", "secretName": "x", "secretData": []})

    uom = await api.get("/uom")
    units = uom["uom"]["units"]
    assert units
    assert all(isinstance(u.get("values"), list) for u in units.values())
    # The Accept header's other value (the spec's enum): TOML of the same document.
    r = await metadata.get(f"{PREFIX}/uom", headers={"Accept": "application/toml"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/toml")
    assert tomllib.loads(r.text) == uom["uom"]


async def test_errors_are_json_with_correlation_ids(metadata: httpx.AsyncClient) -> None:
    """Error paths outside the happy flow: malformed JSON, wrong shape, wrong media type, no such route."""
    cases = [
        ("POST", "/deviceservice", {"content": b"[{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", "/deviceservice", {"json": {"apiVersion": "v3", "service": service("x")}}, 400),
        ("POST", "/device", {"json": [req("device", {"name": "no-service"})]}, 400),
        ("GET", "/device/all", {"params": {"maxLevels": "-1"}}, 400),
    ]
    for method, path, kw, status in cases:
        for cid in (str(uuid.uuid4()), None):
            headers = {**kw.get("headers", {}), **({"X-Correlation-ID": cid} if cid else {})}
            r = await metadata.request(method, PREFIX + path, **{**kw, "headers": headers})
            assert r.status_code == status, (method, path, r.text)
            assert r.headers["content-type"] == "application/json"
            if cid:
                assert r.headers["x-correlation-id"] == cid
            else:
                uuid.UUID(r.headers["x-correlation-id"])
            body = r.json()
            assert body["statusCode"] == status
            assert body["message"]
            assert body["apiVersion"] == "v3"
            responses = SPEC["paths"][path][method.lower()]["responses"]
            assert str(status) in responses
            assert_valid(
                body, "paths", path, method.lower(), "responses", str(status), "content", "application/json", "schema"
            )


def test_every_spec_operation_was_exercised(request: pytest.FixtureRequest) -> None:
    others = {
        item.originalname
        for item in request.session.items
        if item.module is request.module and item.originalname != request.node.originalname
    }
    all_tests = {name for name in dir(request.module) if name.startswith("test_") and name != request.node.originalname}
    if not (others == all_tests and all_tests <= _RAN):
        pytest.skip("only meaningful when the whole module ran")
    missing = sorted(set(OPERATIONS) - EXERCISED)
    assert not missing, f"spec operations never exercised: {missing}"
    assert len(OPERATIONS) == 46, "core-metadata.yaml v4.0.2 defines 46 operations"
