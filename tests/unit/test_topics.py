"""EdgeX topics as NATS subjects: names are escaped into exactly one token and come back unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeplane_common.bus.memory import subject_matches
from edgeplane_common.bus.topics import Topics, escape, subject, unescape

# Names as users write them, biased towards the characters that matter to NATS and to our escaping.
names = st.text(alphabet=st.sampled_from([*"ab.*> %\t2E5", "é", "温"]) | st.characters(), min_size=1)


@given(names)
def test_unescape_inverts_escape(name: str) -> None:
    assert unescape(escape(name)) == name


@given(names)
def test_escaped_name_is_one_plain_token(name: str) -> None:
    token = escape(name)
    assert token
    assert not set(token) & set(".*> \t")


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("Random-Integer-Device", "Random-Integer-Device"),
        ("dev.1", "dev%2E1"),
        ("room 12", "room%2012"),
        ("a*b>c", "a%2Ab%3Ec"),
        ("100%", "100%25"),
        ("%2E", "%252E"),  # a literal escape sequence in a name is not mistaken for an escaped dot
    ],
)
def test_escape_examples(name: str, escaped: str) -> None:
    assert escape(name) == escaped
    assert unescape(escaped) == name


def test_subject_joins_tokens() -> None:
    assert subject("edgex", "events", ">") == "edgex.events.>"


def test_event_topic_follows_edgex_scheme() -> None:
    topic = Topics.events("device-virtual", "Random.Profile", "dev 1", "Int8")
    assert topic == "edgex.events.device.device-virtual.Random%2EProfile.dev%201.Int8"
    assert subject_matches(Topics.EVENTS_ALL, topic)
    assert topic.startswith(f"{Topics.BASE}.")


def test_system_event_topic() -> None:
    assert Topics.system_event("core-metadata", "device", "add", "device-virtual", "my profile") == (
        "edgex.system-events.core-metadata.device.add.device-virtual.my%20profile"
    )
    assert Topics.system_event("core-metadata", "device", "delete", "svc.a") == (
        "edgex.system-events.core-metadata.device.delete.svc%2Ea"
    )
    assert subject_matches(Topics.SYSTEM_EVENTS_ALL, Topics.system_event("s", "t", "a", "o"))


def test_system_event_subscriptions_match_what_core_metadata_publishes() -> None:
    every_device = Topics.system_events_of("device")
    assert every_device == "edgex.system-events.core-metadata.device.>"
    mine = Topics.system_events_of("device", owner="svc.a")
    assert mine == "edgex.system-events.core-metadata.device.*.svc%2Ea.>"
    added = Topics.system_event("core-metadata", "device", "add", "svc.a", "P")
    assert subject_matches(every_device, added)
    assert subject_matches(mine, added)
    assert not subject_matches(mine, Topics.system_event("core-metadata", "device", "add", "svc-b", "P"))
    profiles = Topics.system_events_of("deviceprofile")
    assert subject_matches(
        profiles, Topics.system_event("core-metadata", "deviceprofile", "delete", "core-metadata", "P")
    )
    assert not subject_matches(profiles, added)


def test_command_topics() -> None:
    request = Topics.command_request("device-modbus", "PLC 1", "Temp.Set", "SET")
    assert request == "edgex.device.command.request.device-modbus.PLC%201.Temp%2ESet.set"
    everything = Topics.command_request_all("device-modbus")
    assert everything == "edgex.device.command.request.device-modbus.>"
    assert subject_matches(everything, request)
    assert not subject_matches(everything, Topics.command_request("device-opcua", "PLC 1", "x", "get"))
    assert Topics.device_validation("device.modbus") == "edgex.device.validate.device%2Emodbus"


@pytest.mark.parametrize(
    ("pattern", "subj", "matches"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        ("*.b.>", "x.b.y", True),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
    ],
)
def test_subject_matching_like_nats(pattern: str, subj: str, matches: bool) -> None:
    assert subject_matches(pattern, subj) is matches


def test_events_of_one_service_and_core_events_are_built_in_one_place() -> None:
    assert Topics.events_of("device.modbus") == "edgex.events.device.device%2Emodbus.>"
    assert subject_matches(Topics.events_of("svc"), Topics.events("svc", "P", "d", "s"))
    assert not subject_matches(Topics.events_of("svc"), Topics.events("svc2", "P", "d", "s"))
    assert Topics.core_events("core-data", "P.1", "dev 1", "src") == "edgex.events.core.core-data.P%2E1.dev%201.src"
