"""The one EdgeX name validation (edgeplane_common.models.names) and its use in event validation."""

from __future__ import annotations

import uuid

import pytest

from edgeplane_common.bus.topics import Topics, escape
from edgeplane_common.edgex.events import validate_event
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models.names import (
    MAX_NAME_BYTES,
    NATS_MAX_CONTROL_LINE,
    NameRule,
    check_name,
    name_problem,
    subject_size,
)


@pytest.mark.parametrize("name", ["plc-1", "a.b", "%41", "x y", "中文 测试", "a*b>c", "\t", "🙂" * 3, "." * 5])
def test_subject_size_is_the_escaped_utf8_size(name: str) -> None:
    assert subject_size(name) == len(escape(name).encode())


def test_four_longest_names_make_a_subject_well_under_the_control_line() -> None:
    # Worst cases for the cap: all-escaped ASCII (3 bytes each) and 4-byte UTF-8 characters.
    for longest in ("." * (MAX_NAME_BYTES // 3), "🙂" * (MAX_NAME_BYTES // 4)):
        assert name_problem(longest, NameRule.TEXT) is None
        subject = Topics.events(longest, longest, longest, longest)
        inbox = "_INBOX." + "x" * 100  # a reply subject, generously sized
        line = f"HPUB {subject} {inbox} 99999999 99999999\r\n"
        assert len(line.encode()) < NATS_MAX_CONTROL_LINE


@pytest.mark.parametrize("rule", list(NameRule))
@pytest.mark.parametrize("bad", ["", "   ", ".", "..", "n" * 10_000, "%" * 200])
def test_every_rule_refuses_blank_dot_and_oversize_names(rule: NameRule, bad: str) -> None:
    assert name_problem(bad, rule) is not None


def test_the_error_names_the_field_and_does_not_echo_a_huge_name() -> None:
    with pytest.raises(ValueError, match="device name 'nnn") as info:
        check_name("n" * 10_000, "device name")
    assert "too long" in str(info.value)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize(
    ("rule", "good", "bad"),
    [
        (NameRule.SERVICE, ["device-modbus", "svc_1:a;b=c~d.e"], ["中文", "a b", "a/b", "x?y"]),
        (NameRule.IDENTIFIER, ["测试中文設備名称", "自动寻找監測-1", "plc.1"], ["a b", "a/b", "x?y", "a\nb"]),
        (NameRule.TEXT, ["中文测试命令 UINT16", "Speed (rpm) #1", "a.b"], ["a/b", "a\nb", "a\x00b", "a\x85b"]),
    ],
)
def test_rules_accept_what_edgex_accepts_and_refuse_the_rest(rule: NameRule, good: list[str], bad: list[str]) -> None:
    for name in good:
        assert name_problem(name, rule) is None, name
    for name in bad:
        assert name_problem(name, rule) is not None, name


def event(**overrides: object) -> dict[str, object]:
    reading = {"resourceName": "r", "valueType": "Int16", "value": "1"}
    reading.update(overrides.pop("reading", {}))  # type: ignore[arg-type]
    return {
        "id": str(uuid.uuid4()),
        "deviceName": "d",
        "profileName": "p",
        "sourceName": "s",
        "origin": 1,
        "readings": [reading],
        **overrides,
    }


@pytest.mark.parametrize("key", ["deviceName", "profileName", "sourceName"])
def test_events_with_a_10000_character_name_are_refused(key: str) -> None:
    with pytest.raises(ContractInvalid, match=f"event.{key} .*too long"):
        validate_event(event(**{key: "n" * 10_000}))


@pytest.mark.parametrize("key", ["deviceName", "resourceName", "profileName"])
def test_readings_with_a_10000_character_name_are_refused(key: str) -> None:
    with pytest.raises(ContractInvalid, match=rf"event.readings\[0\].{key} .*too long"):
        validate_event(event(reading={key: "n" * 10_000}))


def test_events_with_unicode_and_spaced_names_pass() -> None:
    record = validate_event(event(deviceName="测试中文設備名称", reading={"resourceName": "中文测试资源 UINT16"}))
    assert record.device == "测试中文設備名称"
    assert record.readings[0].resource == "中文测试资源 UINT16"
