"""Settings from the environment, and the admin token file."""

from __future__ import annotations

import os
import stat
from dataclasses import fields
from pathlib import Path

import pytest

from gateway.admin.auth import AdminAuth, read_or_create_token, resolve_admin_token
from gateway.settings import (
    _ENV,
    _LIFECYCLE_ENV,
    _RETRAINING_ENV,
    LifecycleSettings,
    RetrainingSettings,
    Settings,
    SettingsError,
)


def test_defaults(tmp_path):
    settings = Settings.from_environ({"MODELGATE_HOME": str(tmp_path)})
    assert settings.home == tmp_path.resolve()
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.max_body_bytes == 8 * 1024 * 1024
    assert settings.batching is True and settings.max_batch_size == 64
    assert settings.inference_mode == "auto" and settings.ort_intra_op_threads == 1
    assert settings.poll_interval_ms == 250 and settings.ring_capacity == 10_000
    assert settings.admin_token is None


def test_every_variable_is_cast(tmp_path):
    environ = {
        "MODELGATE_HOME": str(tmp_path),
        "MODELGATE_HOST": "0.0.0.0",
        "MODELGATE_PORT": "9000",
        "MODELGATE_ADMIN_TOKEN": "tok",
        "MODELGATE_MAX_BODY_BYTES": "4096",
        "MODELGATE_MAX_ROWS": "10",
        "MODELGATE_BATCHING": "off",
        "MODELGATE_MAX_BATCH_SIZE": "8",
        "MODELGATE_MAX_BATCH_DELAY_MS": "1.5",
        "MODELGATE_INFERENCE_MODE": "Thread",
        "MODELGATE_ORT_INTRA_OP_THREADS": "2",
        "MODELGATE_SHADOW_QUEUE": "16",
        "MODELGATE_SHADOW_CPU_SHARE": "0.25",
        "MODELGATE_POLL_INTERVAL_MS": "100",
        "MODELGATE_RING_CAPACITY": "500",
    }
    settings = Settings.from_environ(environ)
    assert settings.port == 9000 and settings.host == "0.0.0.0"
    assert settings.batching is False and settings.max_batch_delay_s == pytest.approx(0.0015)
    assert settings.inference_mode == "thread" and settings.ort_intra_op_threads == 2
    assert settings.ring_capacity == 500 and settings.admin_token == "tok"
    assert settings.shadow_cpu_share == 0.25
    # round trip through the environment (how uvicorn workers get their settings)
    assert Settings.from_environ(settings.to_environ()) == settings


def test_cli_overrides_win_and_none_falls_back(tmp_path):
    environ = {"MODELGATE_HOME": str(tmp_path / "env"), "MODELGATE_PORT": "9000"}
    settings = Settings.from_environ(environ, home=str(tmp_path / "cli"), port=None, host="::1")
    assert settings.home == (tmp_path / "cli").resolve()
    assert settings.port == 9000 and settings.host == "::1"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MODELGATE_PORT", "http", "MODELGATE_PORT"),
        ("MODELGATE_PORT", "70000", "port"),
        ("MODELGATE_BATCHING", "maybe", "on or off"),
        ("MODELGATE_INFERENCE_MODE", "gpu", "auto, inline, thread"),
        ("MODELGATE_SHADOW_CPU_SHARE", "0", "MODELGATE_SHADOW_CPU_SHARE"),
        ("MODELGATE_SHADOW_CPU_SHARE", "1.5", "MODELGATE_SHADOW_CPU_SHARE"),
        ("MODELGATE_MAX_BATCH_SIZE", "0", "MODELGATE_MAX_BATCH_SIZE"),
        ("MODELGATE_MAX_BATCH_DELAY_MS", "soon", "MODELGATE_MAX_BATCH_DELAY_MS"),
        ("MODELGATE_MAX_BODY_BYTES", "10", "MODELGATE_MAX_BODY_BYTES"),
    ],
)
def test_bad_values_fail_fast_naming_the_variable(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_environ({"MODELGATE_HOME": str(tmp_path), name: value})


def test_every_field_but_home_has_a_variable():
    groups = {"home", "lifecycle", "retraining"}
    assert {f.name for f in fields(Settings)} == set(_ENV) | groups
    assert {f.name for f in fields(LifecycleSettings)} == set(_LIFECYCLE_ENV)
    assert {f.name for f in fields(RetrainingSettings)} == set(_RETRAINING_ENV)


def test_every_bad_value_is_reported_on_its_own_line(tmp_path):
    env = {
        "MODELGATE_HOME": str(tmp_path),
        "MODELGATE_PORT": "http",
        "MODELGATE_ROLLOUT_TICK_S": "soon",
        "MODELGATE_RETRAIN_POLICY": "[1]",
    }
    with pytest.raises(SettingsError) as caught:
        Settings.from_environ(env)
    assert str(caught.value).splitlines() == [
        "MODELGATE_PORT='http': expected an integer",
        "MODELGATE_ROLLOUT_TICK_S='soon': expected a number",
        "MODELGATE_RETRAIN_POLICY='[1]': expected a JSON object",
    ]


def test_the_lifecycle_groups_are_read_with_the_rest(tmp_path):
    env = {
        "MODELGATE_HOME": str(tmp_path),
        "MODELGATE_ROLLOUT_TICK_S": "0.5",
        "MODELGATE_RETRAIN_COMMAND": "python -m retrain --model 'churn model'",
        "MODELGATE_RETRAIN_MIN_LABELS": "250",
    }
    settings = Settings.from_environ(env)
    assert settings.lifecycle == LifecycleSettings(tick_s=0.5)
    assert settings.retraining.command == ("python", "-m", "retrain", "--model", "churn model")
    assert settings.retraining.min_labels == 250
    with pytest.raises(SettingsError, match="MODELGATE_RETRAIN_MIN_LABELS must be an integer"):
        Settings.from_environ({**env, "MODELGATE_RETRAIN_MIN_LABELS": "0"})


def test_the_token_file_is_created_once_with_mode_0600(tmp_path):
    settings = Settings.from_environ({"MODELGATE_HOME": str(tmp_path / "home")})
    token, path = resolve_admin_token(settings)
    assert path == tmp_path.resolve() / "home" / "admin-token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(token) >= 32
    again, _ = resolve_admin_token(settings)
    assert again == token
    assert [p.name for p in path.parent.iterdir()] == ["admin-token"]  # no temp files left


def test_the_environment_token_wins(tmp_path):
    settings = Settings.from_environ(
        {"MODELGATE_HOME": str(tmp_path), "MODELGATE_ADMIN_TOKEN": "t"}
    )
    assert resolve_admin_token(settings) == ("t", None)
    assert not (tmp_path / "admin-token").exists()


def test_an_existing_token_file_is_kept(tmp_path):
    path = Path(tmp_path / "admin-token")
    path.write_text("chosen-by-operator\n")
    assert read_or_create_token(path) == "chosen-by-operator"


def test_bearer_check():
    auth = AdminAuth("abc")
    assert auth.authorized("Bearer abc") and auth.authorized(b"bearer abc")
    for bad in (None, "", "abc", "Bearer", "Bearer abd", "Basic abc", "Bearer abc extra"):
        assert not auth.authorized(bad), bad
    with pytest.raises(ValueError):
        AdminAuth("")


def test_the_configuration_page_lists_every_variable():
    page = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    for table in (_ENV, _LIFECYCLE_ENV, _RETRAINING_ENV):
        for var, _cast in table.values():
            assert f"| `{var}` |" in page, var
