"""API tokens (expiring, revocable, revoked by a password change), who-am-I, login throttling and
lockout."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api.helpers import ROLES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pw-secret-123"


def _token(client, username="alice", password=PASSWORD):
    return client.post("/api/auth/token", {"username": username, "password": password})


def _client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_user_exchanges_username_and_password_for_a_token_that_expires(technician, anon_client):
    response = _token(anon_client)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry", "username", "roles"}
    assert (body["username"], body["roles"]) == ("alice", ["technician"])
    stored = AuthToken.objects.get(user=technician)
    assert body["token"] not in (stored.digest, stored.token_key)  # only a digest is kept
    assert timezone.now() + timedelta(hours=9) < stored.expiry <= timezone.now() + timedelta(hours=10)


def test_each_login_gets_its_own_token(technician, anon_client):
    first = _token(anon_client).json()["token"]
    second = _token(anon_client).json()["token"]

    assert first != second
    assert AuthToken.objects.filter(user=technician).count() == 2


def test_the_token_authenticates_later_calls(technician, anon_client):
    token = _token(anon_client).json()["token"]

    response = _client_with(token).get("/api/auth/me")

    assert response.status_code == 200
    assert response.json() == {"username": "alice", "roles": ["technician"], "role": "technician"}


def test_the_token_and_the_user_s_roles_are_one_query(technician, anon_client, django_assert_num_queries):
    from django.contrib.auth.models import Group

    technician.groups.add(Group.objects.get_or_create(name="pharmacist")[0], Group.objects.get_or_create(name="x, y")[0])
    client = _client_with(_token(anon_client).json()["token"])

    with django_assert_num_queries(1):
        response = client.get("/api/auth/me")

    assert sorted(response.json()["roles"]) == ["pharmacist", "technician", "x, y"]


def test_a_role_taken_away_counts_from_the_next_request(technician, anon_client):
    client = _client_with(_token(anon_client).json()["token"])
    assert client.post("/api/scan", {"barcode": "nothing-at-all"}).status_code != 403

    technician.groups.clear()

    assert client.get("/api/auth/me").json()["roles"] == []
    assert client.post("/api/scan", {"barcode": "nothing-at-all"}).status_code == 403


def test_an_expired_token_is_refused(technician, anon_client):
    token = _token(anon_client).json()["token"]
    AuthToken.objects.filter(user=technician).update(expiry=timezone.now() - timedelta(seconds=1))

    response = _client_with(token).get("/api/auth/me")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_a_user_revokes_the_token_they_call_with_and_it_stops_working(technician, anon_client):
    token = _token(anon_client).json()["token"]
    other = _token(anon_client).json()["token"]
    client = _client_with(token)

    response = client.delete("/api/auth/token")

    assert response.status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    assert _client_with(other).get("/api/auth/me").status_code == 200  # only that one token
    assert AuthToken.objects.filter(user=technician).count() == 1


def test_revoking_needs_a_token(anon_client):
    response = anon_client.delete("/api/auth/token")

    assert response.status_code == 401


def test_a_password_change_revokes_every_token_of_the_user(technician, pharmacist, anon_client):
    tokens = [_token(anon_client).json()["token"] for _ in range(2)]
    theirs = _token(anon_client, "paul").json()["token"]

    technician.set_password("a-new-password-2026")
    technician.save()

    assert all(_client_with(token).get("/api/auth/me").status_code == 401 for token in tokens)
    assert not AuthToken.objects.filter(user=technician).exists()
    assert _client_with(theirs).get("/api/auth/me").status_code == 200


def test_saving_a_user_without_changing_the_password_keeps_the_tokens(technician, anon_client):
    token = _token(anon_client).json()["token"]

    technician.first_name = "Alice"
    technician.save()

    assert _client_with(token).get("/api/auth/me").status_code == 200


def test_a_deactivated_user_s_token_stops_working(technician, anon_client):
    token = _token(anon_client).json()["token"]

    technician.is_active = False
    technician.save()

    assert _client_with(token).get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("token", ["abc\x00def", "\x00" * 64])
def test_a_token_holding_a_nul_character_is_refused_not_an_error(token, technician, anon_client):
    good = _token(anon_client).json()["token"]

    for header in (token, good[:8] + "\x00" + good[9:]):
        response = APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Token {header}")
        assert response.status_code == 401
        assert response.json()["code"] == "authentication_failed"
    assert _client_with(good).get("/api/auth/me").status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody-here", "password": PASSWORD},
    ],
)
def test_a_wrong_username_or_password_is_refused_without_a_token(credentials, technician, anon_client):
    response = anon_client.post("/api/auth/token", credentials)

    assert response.status_code == 400
    assert response.json() == {"code": "invalid_credentials", "detail": "Unknown username or wrong password."}
    assert AuthToken.objects.count() == 0


def test_an_inactive_user_gets_no_token(anon_client):
    UserFactory(username="gone", is_active=False)

    response = anon_client.post("/api/auth/token", {"username": "gone", "password": PASSWORD})

    assert response.status_code == 400
    assert AuthToken.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"password": "x"}, {"username": "", "password": ""},
                                  {"username": ["alice"], "password": {"a": 1}},
                                  {"username": "a" * 151, "password": "x"}, {"username": "alice", "password": "x" * 129}])
def test_a_token_request_without_a_proper_username_and_password_is_invalid(body, technician, anon_client):
    response = anon_client.post("/api/auth/token", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("header", ["Token not-a-real-token", "Token caf\xe9", "Token", "Token a b"])
def test_a_bad_token_is_refused(header, anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION=header)

    response = anon_client.get("/api/auth/me")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.parametrize("role", ROLES)
def test_anyone_logged_in_may_ask_who_they_are(role, client_for):
    response = client_for(role).get("/api/auth/me")

    if role is None:
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"
    else:
        assert response.status_code == 200
        assert response.json()["roles"] == ([] if role == "none" else [role])


@pytest.mark.parametrize("role", ROLES)
def test_anyone_may_ask_for_a_token(role, client_for, technician):
    response = client_for(role).post("/api/auth/token", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 200


# --- lockout and throttling -------------------------------------------------------------------------


def test_after_five_wrong_passwords_even_the_right_one_is_refused(technician, anon_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "1000/min"}}
    for _ in range(5):
        assert _token(anon_client, password="guess").status_code in (400, 429)

    response = _token(anon_client)

    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert AuthToken.objects.count() == 0
    assert AccessAttempt.objects.get(username="alice").failures_since_start >= 5


def test_the_lockout_is_per_username_and_address(technician, pharmacist, anon_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "1000/min"}}
    for _ in range(5):
        _token(anon_client, password="guess")

    assert _token(anon_client, "paul").status_code == 200
    elsewhere = APIClient(REMOTE_ADDR="10.1.2.3")
    assert _token(elsewhere).status_code == 200


def test_the_lockout_ends_after_the_cool_off(technician, anon_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "1000/min"}}
    for _ in range(5):
        _token(anon_client, password="guess")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert _token(anon_client).status_code == 200


def test_the_login_page_locks_out_too(technician, client):
    for _ in range(5):
        client.post("/accounts/login/", {"username": "alice", "password": "guess"})

    response = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_token_endpoint_is_throttled_per_address(technician, anon_client):
    # Each try names another user, so no lockout comes first: this is the throttle of the address alone.
    answers = [_token(anon_client, f"nobody-{n}", "x").status_code for n in range(11)]

    assert answers[:10] == [400] * 10
    assert answers[10] == 429
    response = _token(anon_client)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert AuthToken.objects.count() == 0
