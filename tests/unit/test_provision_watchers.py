"""Provision-watcher matching (edgeplane_sdk.discovery), as device-sdk-go does it: identifiers are regexes
searched in the discovered device's protocol properties (all must match), blocking identifiers exclude on
equality, only UNLOCKED watchers of this service apply, the first by name wins, known names are skipped."""

from __future__ import annotations

from typing import Any

import pytest

from edgeplane_common.models import AdminState, OperatingState, ProvisionWatcher
from edgeplane_sdk.discovery import blocked, device_for, identifiers_match, matching_watcher, to_provision
from edgeplane_sdk.driver import DiscoveredDevice

SERVICE = "device-x"


def watcher(name: str, identifiers: dict[str, str], **extra: Any) -> ProvisionWatcher:
    body: dict[str, Any] = {
        "name": name,
        "serviceName": SERVICE,
        "identifiers": identifiers,
        "discoveredDevice": {"profileName": f"profile-of-{name}", "adminState": "LOCKED"},
    }
    return ProvisionWatcher.model_validate(body | extra)


def found(name: str = "d1", **props: Any) -> DiscoveredDevice:
    return DiscoveredDevice(
        name, {"tcp": {k: v for k, v in props.items() if k != "Serial"}, "info": {"Serial": props.get("Serial", "S-1")}}
    )


@pytest.mark.parametrize(
    ("identifiers", "matches"),
    [
        ({"Address": r"^10\.0\.0\.\d+$"}, True),
        ({"Address": r"10\.0"}, True),  # searched, not anchored (Go's regexp.MatchString)
        ({"Address": r"^192\."}, False),
        ({"Address": r"^10\.", "Serial": "^S-"}, True),  # across protocols
        ({"Address": r"^10\.", "Serial": "^X-"}, False),  # every identifier must match
        ({"Missing": ".*"}, False),  # a property the device does not have never matches
        ({"Port": "^502$"}, True),  # non-string values compare as their text
        ({"Secure": "^true$"}, True),  # booleans as EdgeX formats them
    ],
)
def test_identifiers(identifiers: dict[str, str], matches: bool) -> None:
    device = found(Address="10.0.0.7", Port=502, Secure=True)
    assert identifiers_match(device, watcher("w", identifiers)) is matches


def test_blocking_identifiers_exclude_on_equality() -> None:
    w = watcher("w", {"Address": "^10\\."}, blockingIdentifiers={"Address": ["10.0.0.9", "10.0.0.10"]})
    assert blocked(found(Address="10.0.0.9"), w)
    assert not blocked(found(Address="10.0.0.99"), w)  # equality, not a pattern
    assert matching_watcher(found(Address="10.0.0.9"), [w], SERVICE) is None
    assert matching_watcher(found(Address="10.0.0.99"), [w], SERVICE) is w


def test_only_unlocked_watchers_of_this_service_apply_and_the_first_by_name_wins() -> None:
    device = found(Address="10.0.0.1")
    locked = watcher("a-locked", {"Address": "^10"}, adminState="LOCKED")
    other = watcher("b-other", {"Address": "^10"}, serviceName="device-y")
    second = watcher("d-second", {"Address": "^10"})
    first = watcher("c-first", {"Address": "^10"})
    assert matching_watcher(device, [second, locked, other, first], SERVICE) is first
    assert matching_watcher(device, [locked, other], SERVICE) is None


def test_the_device_takes_the_discovered_name_and_protocols_and_the_watchers_template() -> None:
    w = watcher(
        "w",
        {"Address": "^10"},
        discoveredDevice={
            "profileName": "Thermo",
            "adminState": "LOCKED",
            "autoEvents": [{"interval": "10s", "sourceName": "Temp"}],
            "properties": {"site": "lab"},
        },
    )
    discovered = DiscoveredDevice("plc-7", {"tcp": {"Address": "10.0.0.7"}}, description="a PLC", labels=["new"])
    device = device_for(discovered, w)
    assert (device.name, device.service_name, device.profile_name) == ("plc-7", SERVICE, "Thermo")
    assert (device.admin_state, device.operating_state) == (AdminState.LOCKED, OperatingState.UP)
    assert device.protocols == {"tcp": {"Address": "10.0.0.7"}}
    assert [ae.source_name for ae in device.auto_events] == ["Temp"]
    assert (device.description, device.labels, device.properties) == ("a PLC", ["new"], {"site": "lab"})


def test_to_provision_skips_known_names_unmatched_and_invalid_devices() -> None:
    w = watcher("w", {"Address": "^10"})
    batch = [
        found("known", Address="10.0.0.1"),
        found("fresh", Address="10.0.0.2"),
        found("fresh", Address="10.0.0.3"),  # the same name twice in one discovery: added once
        found("stranger", Address="172.16.0.1"),
        found("bad name/with slash", Address="10.0.0.4"),
    ]
    got = to_provision(batch, [w], SERVICE, known={"known"})
    assert [(d.name, d.protocols["tcp"]["Address"], pw.name) for d, pw in got] == [("fresh", "10.0.0.2", "w")]
