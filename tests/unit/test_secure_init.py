"""`edgeplane secure init`: the merged per-service settings, the tokens part, and container bundles."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from edgeplane import secure
from edgeplane.cli import app
from edgeplane.secure import tokens
from edgeplane.services import SERVICES, by_name
from edgeplane_common.auth.tokens import load_or_create_signing_key


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _verify(token: str, key_file: Path) -> dict[str, object]:
    public = load_or_create_signing_key(key_file).public_key()
    claims: dict[str, object] = jwt.decode(token, public, algorithms=["EdDSA"], options={"verify_aud": False})
    return claims


def test_every_rest_service_gets_a_service_token_signed_with_the_key(tmp_path: Path) -> None:
    config = secure.init(tmp_path / "s", parts=())
    key = tmp_path / "s" / tokens.SIGNING_KEY
    assert _mode(key) == 0o600
    for service in SERVICES:
        variables = config.env[service.name]
        assert variables["EDGEPLANE_SECURITY__ENABLED"] == "true"
        token = variables.get(f"{service.env_prefix}SECURITY__SERVICE_TOKEN")
        if service.health != "http":  # the simulators call nobody
            assert token is None
            continue
        assert token is not None
        claims = _verify(token, key)
        assert (claims["sub"], claims["role"], claims["kind"]) == (service.name, "service", "service")


def test_the_generated_admin_password_is_reported_once_and_kept(tmp_path: Path) -> None:
    first = secure.init(tmp_path, parts=())
    assert first.admin_password
    assert first.env["core-metadata"]["CORE_METADATA_SECURITY__ADMIN_PASSWORD"] == first.admin_password
    # Only core-metadata creates the admin: nobody else is handed the password or the signing key.
    for name, variables in first.env.items():
        if name != "core-metadata":
            assert first.admin_password not in variables.values()
            assert "CORE_METADATA_SECURITY__SIGNING_KEY_FILE" not in variables
    again = secure.init(tmp_path, parts=())
    assert again.admin_password is None  # not shown again
    assert again.env["core-metadata"]["CORE_METADATA_SECURITY__ADMIN_PASSWORD"] == first.admin_password


def test_a_given_admin_password_is_used_and_not_reported(tmp_path: Path) -> None:
    config = secure.init(tmp_path, parts=(), admin_password="a-long-chosen-one")
    assert config.admin_password is None
    assert config.env["core-metadata"]["CORE_METADATA_SECURITY__ADMIN_PASSWORD"] == "a-long-chosen-one"


def test_the_signing_key_is_kept_unless_forced(tmp_path: Path) -> None:
    secure.init(tmp_path, parts=())
    before = (tmp_path / tokens.SIGNING_KEY).read_bytes()
    secure.init(tmp_path, parts=())
    assert (tmp_path / tokens.SIGNING_KEY).read_bytes() == before
    secure.init(tmp_path, parts=(), force=True)
    assert (tmp_path / tokens.SIGNING_KEY).read_bytes() != before


def test_parts_are_merged_shared_first_then_per_service(tmp_path: Path) -> None:
    def part(root: Path, services: object, *, hosts: object, force: bool) -> secure.Env:
        return {"*": {"EDGEPLANE_X": "shared", "EDGEPLANE_Y": "shared"}, "core-data": {"EDGEPLANE_Y": "own"}}

    config = secure.init(tmp_path, parts=(part,))
    assert config.env["core-data"]["EDGEPLANE_Y"] == "own"
    assert config.env["core-command"]["EDGEPLANE_Y"] == "shared"
    assert config.env["core-command"]["EDGEPLANE_X"] == "shared"


def test_a_service_reads_its_env_file_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core_data.settings import CoreDataSettings

    config = secure.init(tmp_path, parts=())
    env_file = config.env_file("core-data")
    assert _mode(env_file) == 0o600
    monkeypatch.setenv("EDGEPLANE_ENV_FILE", str(env_file))
    settings = CoreDataSettings()
    assert settings.security.enabled is True
    assert settings.security.service_token is not None
    assert (
        _verify(settings.security.service_token.get_secret_value(), tmp_path / tokens.SIGNING_KEY)["sub"] == "core-data"
    )
    monkeypatch.setenv("CORE_DATA_SECURITY__ENABLED", "false")
    assert CoreDataSettings().security.enabled is False


def test_a_missing_env_file_is_an_error_not_an_open_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core_data.settings import CoreDataSettings

    monkeypatch.setenv("EDGEPLANE_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ValueError, match=r"nope\.env"):
        CoreDataSettings()


def test_a_bundle_holds_the_service_files_with_paths_seen_from_its_mount(tmp_path: Path) -> None:
    config = secure.init(tmp_path / "s", parts=())
    env_file = secure.bundle(config, "core-metadata", tmp_path / "b", "/run/edgeplane")
    text = env_file.read_text()
    assert "CORE_METADATA_SECURITY__SIGNING_KEY_FILE='/run/edgeplane/token-signing.pem'" in text
    copied = tmp_path / "b" / "token-signing.pem"
    assert copied.read_bytes() == (tmp_path / "s" / tokens.SIGNING_KEY).read_bytes()
    assert _mode(copied) == 0o600
    # core-data's bundle gets its token, not the key.
    secure.bundle(config, "core-data", tmp_path / "cd", "/run/edgeplane")
    assert sorted(p.name for p in (tmp_path / "cd").iterdir()) == ["service.env"]


def test_values_that_would_break_the_env_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="EDGEPLANE_BAD"):
        secure.write_env_file(tmp_path / "x.env", {"EDGEPLANE_BAD": "it's"})


def test_cli_prints_the_generated_password_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEPLANE_ADMIN_PASSWORD", raising=False)
    runner = CliRunner()
    first = runner.invoke(app, ["secure", "init", "--dir", str(tmp_path / "s"), "--bundles", str(tmp_path / "b")])
    assert first.exit_code == 0, first.output
    password = (tmp_path / "s" / tokens.ADMIN_PASSWORD).read_text().strip()
    assert password in first.output
    assert (tmp_path / "b" / by_name("console").name / "service.env").is_file()
    second = runner.invoke(app, ["secure", "init", "--dir", str(tmp_path / "s")])
    assert second.exit_code == 0, second.output
    assert password not in second.output
    assert oct(_mode(tmp_path / "s")) == oct(0o700)
    assert os.access(tmp_path / "s" / "env" / "core-data.env", os.R_OK)


def test_the_service_own_name_in_its_file_beats_a_shared_one_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core_data.settings import CoreDataSettings

    env_file = tmp_path / "core-data.env"
    secure.write_env_file(
        env_file,
        {"CORE_DATA_NATS__USER": "core-data", "EDGEPLANE_NATS__USER": "shared-file", "EDGEPLANE_LOG_LEVEL": "DEBUG"},
    )
    monkeypatch.setenv("EDGEPLANE_ENV_FILE", str(env_file))
    monkeypatch.setenv("EDGEPLANE_NATS__USER", "stack-wide")
    monkeypatch.setenv("EDGEPLANE_LOG_LEVEL", "WARNING")
    settings = CoreDataSettings()
    assert settings.nats.user == "core-data"  # own name, from the file
    assert settings.log_level == "WARNING"  # shared name: the environment over the file


def test_init_runs_every_part_by_default(tmp_path: Path) -> None:
    config = secure.init(tmp_path)
    # secretstore: each REST service has its own key file, and its settings point at it.
    key_file = Path(config.env["core-data"]["CORE_DATA_SECURITY__SECRET_KEY_FILE"])
    assert key_file.is_file()
    assert key_file.is_relative_to(tmp_path)
    assert "CORE_DATA_SECURITY__SECRET_KEY_FILE" not in config.env["core-command"]


def test_server_bundles_hold_their_configuration_with_paths_seen_from_the_mount(tmp_path: Path) -> None:
    config = secure.init(tmp_path / "s")
    secure.server_bundle(config, "nats", tmp_path / "nats", "/run/edgeplane")
    conf = (tmp_path / "nats" / "nats" / "nats.conf").read_text()
    assert 'cert_file: "/run/edgeplane/certs/nats.pem"' in conf
    assert str(tmp_path) not in conf
    assert (tmp_path / "nats" / "certs" / "nats.key").read_bytes() == (
        tmp_path / "s" / "certs" / "nats.key"
    ).read_bytes()
    secure.server_bundle(config, "redis", tmp_path / "redis", "/run/edgeplane")
    acl = (tmp_path / "redis" / "redis" / "users.acl").read_text()
    assert "user core-data on" in acl
    assert _mode(tmp_path / "redis" / "redis" / "users.acl") == 0o644


def test_a_service_bundle_can_belong_to_the_service_user(tmp_path: Path) -> None:
    config = secure.init(tmp_path / "s")
    uid = os.getuid()  # chown to another uid needs root; the owner is passed through either way
    env_file = secure.bundle(config, "device-opcua", tmp_path / "b", "/run/edgeplane", owner=uid)
    assert env_file.stat().st_uid == uid
    assert (tmp_path / "b" / "secrets" / "device-opcua.key").stat().st_uid == uid
    assert "DEVICE_OPCUA_NATS__PASSWORD=" in env_file.read_text()
