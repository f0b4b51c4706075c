"""The server-rendered pages: behind login, and showing only what the role may see."""

import pytest
from django.test import Client

from audit.models import PatientAccess
from tests.factories import InfusionSessionFactory, StorageLocationFactory, UserFactory

PASSWORD = "pw-secret-123"


def logged_in(role: str | None) -> Client:
    client = Client()
    user = UserFactory(role=role) if role else UserFactory()
    # force_login: django-axes needs the request that a login page gives; the page itself is
    # exercised by the browser tests and tests/api/test_auth.py.
    client.force_login(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/scan/", "/recall/"])
def test_pages_send_an_anonymous_visitor_to_the_login_page(url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_user_in_no_role_is_refused_the_scan_station_and_sees_no_patient():
    InfusionSessionFactory(patient__name="Maria Lopez")

    response = logged_in(None).get("/scan/")

    assert response.status_code == 403
    assert "Maria Lopez" not in response.content.decode()
    assert not PatientAccess.objects.exists()


@pytest.mark.django_db
def test_the_login_page_renders():
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert b'id="id_username"' in response.content


@pytest.mark.django_db
def test_the_scan_station_lists_locations_and_todays_sessions_for_a_technician():
    StorageLocationFactory(name="Fridge A", code="FRIDGE-A")
    session = InfusionSessionFactory(patient__name="Maria Lopez")
    response = logged_in("technician").get("/scan/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="scan-input"' in body
    assert "FRIDGE-A" in body
    assert "Maria Lopez" in body and f'value="{session.pk}"' in body
    assert 'id="mode-receive"' in body
    access = PatientAccess.objects.get()
    assert (access.patient, access.via) == (session.patient, "scan-station")


@pytest.mark.django_db
def test_the_scan_station_shows_no_patients_and_no_stock_actions_to_an_auditor():
    InfusionSessionFactory(patient__name="Maria Lopez")
    response = logged_in("auditor").get("/scan/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Maria Lopez" not in body
    assert 'id="mode-receive"' not in body


@pytest.mark.django_db
@pytest.mark.parametrize("role,status", [("recall_coordinator", 200), ("pharmacist", 200), ("auditor", 200),
                                         ("technician", 403), (None, 403)])
def test_the_recall_page_is_for_the_roles_that_may_see_who_received_a_lot(role, status):
    response = logged_in(role).get("/recall/")
    assert response.status_code == status
    if status == 200:
        assert b'id="lot-input"' in response.content


@pytest.mark.django_db
def test_the_recall_form_is_offered_only_to_roles_that_manage_recalls():
    assert b"recall-form-template" in logged_in("recall_coordinator").get("/recall/").content
    assert b"recall-form-template" not in logged_in("auditor").get("/recall/").content


@pytest.mark.parametrize("path", ["/static/web/scan.js", "/static/web/recall.js", "/static/web/api.js",
                                  "/static/web/style.css"])
def test_the_pages_assets_are_served_without_debug(path, settings):
    assert settings.DEBUG is False
    response = Client().get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])


@pytest.mark.django_db
def test_the_api_docs_load_their_assets_from_this_server_not_a_cdn():
    body = Client().get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    # No address elsewhere (the page's random CSRF token may hold the letters "cdn" by chance).
    import re
    assert not re.findall(r"(?:src|href)=[\"']?(?:https?:)?//", body)
    assert not re.search(r"cdn\.|jsdelivr|unpkg", body.lower())


@pytest.mark.django_db
def test_the_scan_station_offers_a_fridge_first_and_quarantine_last():
    StorageLocationFactory(name="A quarantine", code="Q-1", kind="quarantine")
    StorageLocationFactory(name="Z fridge", code="F-1", kind="refrigerator")
    StorageLocationFactory(name="Shelf", code="RT-1", kind="room_temperature")
    body = logged_in("technician").get("/scan/").content.decode()
    assert body.index('value="F-1"') < body.index('value="RT-1"') < body.index('value="Q-1"')


@pytest.mark.django_db
def test_the_recall_form_offers_the_classes_of_each_scheme_in_the_notices_words():
    body = logged_in("recall_coordinator").get("/recall/").content.decode()
    assert 'id="recall-schemes"' in body
    for text in ("MHRA class 2: action within 48 hours", "MHRA class 4: caution in use",
                 "FDA market withdrawal: removed for a minor or no violation", "FDA, not yet classified"):
        assert text in body


@pytest.mark.django_db
@pytest.mark.parametrize("given,kept", [("42", '"42"'), ("42x", '""'), ("</script>", '""')])
def test_the_recall_page_remembers_only_a_recall_id_from_its_address(given, kept):
    body = logged_in("recall_coordinator").get("/recall/", {"lot": "L1", "recall": given}).content.decode()
    assert f"recall: {kept}" in body


@pytest.mark.django_db
@pytest.mark.parametrize("role, status, records", [
    ("nurse", 200, True), ("pharmacist", 200, True), ("technician", 200, False), ("auditor", 200, False),
    ("recall_coordinator", 403, False), (None, 403, False),
])
def test_the_infusion_page_is_for_those_who_give_or_read_infusions(role, status, records):
    response = logged_in(role).get("/infusion/")
    assert response.status_code == status
    body = response.content.decode()
    if status == 200:
        assert 'id="worklist"' in body
        assert f"canRecord: {'true' if records else 'false'}" in body


@pytest.mark.django_db
@pytest.mark.parametrize("role, shown", [("recall_coordinator", True), ("auditor", True), ("pharmacist", True),
                                         ("technician", False)])
def test_the_recall_page_shows_the_lot_signal_to_those_who_decide_on_recalls(role, shown):
    body = logged_in(role).get("/recall/").content.decode()
    assert ('id="signals-card"' in body) == shown
