"""Token authentication and who-am-I."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.api.helpers import ROLES
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_exchanges_username_and_password_for_a_token(technician, anon_client):
    response = anon_client.post("/api/auth/token", {"username": "alice", "password": "pw-secret-123"})

    assert response.status_code == 200
    body = response.json()
    assert body == {"token": Token.objects.get(user=technician).key, "username": "alice", "roles": ["technician"]}


def test_asking_twice_returns_the_same_token(technician, anon_client):
    first = anon_client.post("/api/auth/token", {"username": "alice", "password": "pw-secret-123"}).json()
    second = anon_client.post("/api/auth/token", {"username": "alice", "password": "pw-secret-123"}).json()

    assert first["token"] == second["token"]
    assert Token.objects.count() == 1


def test_the_token_authenticates_later_calls(technician, anon_client):
    token = anon_client.post("/api/auth/token", {"username": "alice", "password": "pw-secret-123"}).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    response = client.get("/api/auth/me")

    assert response.status_code == 200
    assert response.json() == {"username": "alice", "roles": ["technician"], "role": "technician"}


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody-here", "password": "pw-secret-123"},
    ],
)
def test_a_wrong_username_or_password_is_refused_without_a_token(credentials, technician, anon_client):
    response = anon_client.post("/api/auth/token", credentials)

    assert response.status_code == 400
    assert response.json() == {"code": "invalid_credentials", "detail": "Unknown username or wrong password."}
    assert Token.objects.count() == 0


def test_an_inactive_user_gets_no_token(anon_client):
    UserFactory(username="gone", is_active=False)

    response = anon_client.post("/api/auth/token", {"username": "gone", "password": "pw-secret-123"})

    assert response.status_code == 400
    assert Token.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"username": "alice"}, {"password": "x"}, {"username": "", "password": ""},
                                  {"username": ["alice"], "password": {"a": 1}}])
def test_a_token_request_without_username_and_password_is_invalid(body, technician, anon_client):
    response = anon_client.post("/api/auth/token", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_a_bad_token_is_refused(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

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
    response = client_for(role).post("/api/auth/token", {"username": "alice", "password": "pw-secret-123"})

    assert response.status_code == 200
