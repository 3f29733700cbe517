"""Secure mode's permission tables (issue 15 items 3-4): what each service's NATS and Redis user may do.

The servers enforce them (tests/integration/test_busauth.py); these pin the rules the issue states."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from edgeplane.secure import busauth
from edgeplane.services import SERVICES, by_name
from edgeplane_common.bus.nats import connect_options, inbox_prefix
from edgeplane_common.bus.topics import Topics
from edgeplane_common.redis import connection_options
from edgeplane_common.settings import NatsSettings, RedisSettings, TlsSettings

BROKER_USERS = [s for s in SERVICES if busauth.uses_brokers(s)]
DEVICE_SERVICES = [s for s in BROKER_USERS if busauth.kind_of(s) == "device"]
COMMAND_REQUEST = "edgex.device.command.request.>"


def test_device_services_publish_only_their_own_events_and_answer_only_their_own_commands() -> None:
    assert {s.name for s in DEVICE_SERVICES} == {"device-modbus", "device-opcua", "device-virtual"}
    for service in DEVICE_SERVICES:
        perms = busauth.nats_permissions(service)
        events = [p for p in perms.publish if p.startswith("edgex.")]
        assert events == [f"edgex.events.device.{service.name}.>"]
        assert not any("command" in p for p in perms.publish)
        commands = [s for s in perms.subscribe if s.startswith("edgex.device.")]
        assert commands == [f"edgex.device.command.request.{service.name}.>", f"edgex.device.validate.{service.name}"]
        assert perms.responds
        # It may create the events stream but not reconfigure it, and touches no consumer.
        assert not any("UPDATE" in p or "CONSUMER" in p for p in perms.publish)


def test_only_core_command_and_the_rules_engine_may_send_device_commands() -> None:
    senders = {s.name for s in BROKER_USERS if COMMAND_REQUEST in busauth.nats_permissions(s).publish}
    assert senders == {"core-command", "rules-engine"}
    # core-metadata reaches device services only to validate devices.
    assert "edgex.device.validate.*" in busauth.nats_permissions(by_name("core-metadata")).publish


def test_nobody_but_its_owner_reads_a_services_replies() -> None:
    for service in BROKER_USERS:
        inboxes = [s for s in busauth.nats_permissions(service).subscribe if s.startswith("_INBOX")]
        assert inboxes == [f"{inbox_prefix(service.name)}.>"]
        assert busauth.inbox_prefix(service.name) == inbox_prefix(service.name)


def test_the_console_publishes_nothing() -> None:
    assert busauth.nats_permissions(by_name("console")).publish == ()
    conf = busauth.nats_config([busauth.nats_user(by_name("console"), "pw")], tls=None)
    assert 'publish: { deny: [">"] }' in conf


def test_the_viewer_reads_events_and_alerts_and_publishes_nothing() -> None:
    perms = busauth.VIEWER_PERMISSIONS
    assert perms.publish == ()
    assert not perms.responds
    assert set(perms.subscribe) == {Topics.EVENTS_ALL, "edgex.events.core.>", Topics.RULE_ALERTS_ALL}


def test_nats_config_has_tls_only_with_a_certificate() -> None:
    users = [busauth.nats_user(s, "pw") for s in BROKER_USERS]
    assert "tls {" not in busauth.nats_config(users, tls=None)
    conf = busauth.nats_config(users, tls=(Path("/s/certs/nats.pem"), Path("/s/certs/nats.key")))
    assert 'cert_file: "/s/certs/nats.pem"' in conf
    assert "handshake_first" in conf


def test_every_service_touches_only_its_own_keys_and_secrets() -> None:
    for service in BROKER_USERS:
        keys = busauth.redis_keys(service)
        assert f"secrets:{service.name}:*" in keys
        assert [k for k in keys if k.startswith("secrets:")] == [f"secrets:{service.name}:*"]
    assert busauth.redis_keys(by_name("core-metadata")) == ("md:*", "auth:*", "secrets:core-metadata:*")
    assert busauth.redis_keys(by_name("core-data")) == ("cd:*", "secrets:core-data:*")
    assert busauth.redis_keys(by_name("device-modbus")) == ("secrets:device-modbus:*",)
    acl = busauth.redis_acl([(by_name("core-data"), "pw")])
    assert acl.splitlines()[0].startswith("user default off")
    assert "pw" not in acl  # only its SHA-256


def test_redis_server_args_name_the_acl_file_and_tls_when_asked(tmp_path: Path) -> None:
    assert busauth.redis_server_args(tmp_path) == ["--aclfile", str(tmp_path.resolve() / "redis/users.acl")]
    tls = busauth.redis_server_args(tmp_path, tls=True)
    assert "--tls-cert-file" in tls
    assert tls[tls.index("--port") + 1] == "0"


def test_clients_use_credentials_and_verify_tls_with_our_ca() -> None:
    nats = NatsSettings(url="tls://nats:4222", user="core-data", password=SecretStr("pw"))
    options = connect_options(nats, name="core-data")
    assert options["user"] == "core-data"
    assert options["password"] == "pw"
    assert options["inbox_prefix"] == "_INBOX.core-data"
    assert options["tls_handshake_first"] is True
    assert "tls_handshake_first" not in connect_options(NatsSettings(url="nats://nats:4222"), name="x")
    redis = RedisSettings(url=SecretStr("rediss://redis:6379/0"), username="core-data", password=SecretStr("pw"))
    r = connection_options(redis, TlsSettings(ca_file="/s/ca.pem"))
    assert r == {"username": "core-data", "password": "pw", "ssl_cert_reqs": "required", "ssl_ca_certs": "/s/ca.pem"}
    assert connection_options(RedisSettings()) == {}
