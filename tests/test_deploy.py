"""The production settings the README documents: refused without a secret key, clean under
`manage.py check --deploy`, cookies and HTTPS as the environment says."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The production environment of the README's "Running in production" section.
PRODUCTION = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "ivig.hospital.example",
    "CSRF_TRUSTED_ORIGINS": "https://ivig.hospital.example",
    "HTTPS": "1",
}


def _run(code_or_args, env: dict) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items()
            if key not in ("SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "DJANGO_SETTINGS_MODULE", "HTTPS")}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    args = [sys.executable, *code_or_args] if isinstance(code_or_args, list) else [sys.executable, "-c", code_or_args]
    return subprocess.run(args, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120)


def _settings(env: dict, *names: str) -> list[str]:
    code = "import django; django.setup(); from django.conf import settings; " + "; ".join(
        f"print(repr(settings.{name}))" for name in names
    )
    result = _run(code, env)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("\n")[: len(names)]


def test_without_a_secret_key_the_server_refuses_to_start_unless_debugging():
    refused = _run("import django; django.setup()", {"DEBUG": "0"})
    debugging = _run("import django; django.setup()", {"DEBUG": "1"})

    assert refused.returncode != 0
    assert "SECRET_KEY is not set" in refused.stderr
    assert debugging.returncode == 0, debugging.stderr


def test_the_secret_key_may_come_from_a_file(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("from-a-mounted-secret-" + secrets.token_urlsafe(40) + "\n")

    (key,) = _settings({"DEBUG": "0", "SECRET_KEY_FILE": str(key_file)}, "SECRET_KEY")

    assert key == repr(key_file.read_text().strip())


def test_check_deploy_is_clean_under_the_production_settings():
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                  {**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50)})

    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_in_production_cookies_travel_only_over_https_and_the_session_lasts_a_shift():
    values = _settings({**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50)},
                       "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_AGE",
                       "SESSION_COOKIE_HTTPONLY")

    assert values == ["True", "True", "True", str(8 * 3600), "True"]


@pytest.mark.parametrize(("env", "expected"), [
    ({"SESSION_COOKIE_SECURE": "0"}, ["False", "True"]),
    ({"SESSION_COOKIE_AGE": "3600", "CSRF_COOKIE_SECURE": "0"}, ["True", "False"]),
])
def test_cookie_flags_come_from_the_environment(env, expected):
    values = _settings({**PRODUCTION, "SECRET_KEY": secrets.token_urlsafe(50), **env},
                       "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")

    assert values == expected


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_postgresql_connections_plan_for_this_workload():
    """Indexes followed on solid-state storage, cursors planned to be read to the end, no JIT."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('random_page_cost'), current_setting('cursor_tuple_fraction'), "
                       "current_setting('jit')")
        assert cursor.fetchone() == ("1.1", "1", "off")
