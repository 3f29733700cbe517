"""`edgeplane secure init`, part secretstore: one private key per service, kept across runs unless forced,
and the variable that points each service at its own."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from edgeplane.secure import secretstore
from edgeplane.services import SERVICES, by_name
from edgeplane_common.secrets import load_key, open_secret_store


def test_each_service_gets_its_own_private_key_and_the_variable_naming_it(tmp_path: Path) -> None:
    env = secretstore.init(tmp_path, SERVICES, hosts=["gateway.local"])
    holders = {s.name for s in SERVICES if s.settings is not None} - {"console"}
    assert set(env) == holders
    assert "modbus-sim" not in env  # simulators serve no secrets
    assert "console" not in env  # reads none: no store, no Redis client in its process
    keys = set()
    for name, variables in env.items():
        service = by_name(name)
        ((var, value),) = variables.items()
        assert var == f"{service.env_prefix}SECURITY__SECRET_KEY_FILE"
        path = Path(value)
        assert path.is_absolute()
        assert path == (tmp_path / "secrets" / f"{name}.key").absolute()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        keys.add(load_key(path))
    assert len(keys) == len(holders)  # 32 random bytes each, none shared
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


def test_a_second_run_keeps_the_keys_and_force_replaces_them(tmp_path: Path) -> None:
    services = [by_name("device-opcua"), by_name("app-http-export")]
    first = secretstore.init(tmp_path, services)
    path = Path(first["device-opcua"]["DEVICE_OPCUA_SECURITY__SECRET_KEY_FILE"])
    key = path.read_bytes()
    assert secretstore.init(tmp_path, services) == first
    assert path.read_bytes() == key
    secretstore.init(tmp_path, services, force=True)
    assert path.read_bytes() != key
    assert not list((tmp_path / "secrets").glob("*.tmp"))


def test_a_service_given_the_variable_opens_the_encrypted_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from device_opcua.settings import DeviceOpcuaSettings

    env = secretstore.init(tmp_path, [by_name("device-opcua")])
    for var, value in env["device-opcua"].items():
        monkeypatch.setenv(var, value)
    store = open_secret_store(DeviceOpcuaSettings())
    assert store.encrypted
    assert "secrets:device-opcua:store" in store.describe()
