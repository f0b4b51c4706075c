"""The lookback tells not only who received a vial of the lot but when it ran and what became of
it: the infusion's times and each vial's fate, and for a home supply the day the patient used it."""

import io
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from inventory.models import local_today
from recalls.export import recall_workbook
from recalls.services import recall_create
from tests.factories import AuthorisationFactory, LotFactory, PatientFactory, UserFactory
from tests.traceability.helpers import brand, stock
from traceability.infusion import administration_finish, administration_start, home_infusion_report
from traceability.models import Dispense
from traceability.services import session_create, vial_dispense

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot_given_two_ways():
    """Lot HZ-9 of Hizentra: two vials infused here (one whole, one part), two supplied for home
    use of which the patient reported one used yesterday."""
    tech, nurse = UserFactory(username="tess", role="technician"), UserFactory(username="nina", role="nurse")
    hizentra = brand("Hizentra", route="SC")
    lot = LotFactory(product=hizentra, lot_number="HZ-9")
    ann = PatientFactory(name="Ann Archer")
    clinic = session_create(patient=ann, scheduled_date=local_today(),
                            indication="cidp", ordered_grams=Decimal("20"), route="SC", actor=tech,
                            authorisation=AuthorisationFactory(patient=ann, indication="cidp", route="SC"))
    given = [vial_dispense(session=clinic, vial=v, actor=tech) for v in stock(hizentra, 10, 2, lot=lot)]
    ben = PatientFactory(name="Ben Baker")
    home = session_create(patient=ben, scheduled_date=local_today() - timedelta(days=2),
                          indication="primary_immunodeficiency", ordered_grams=Decimal("20"), route="SC",
                          setting="home", actor=tech, authorisation=AuthorisationFactory(patient=ben, route="SC"))
    for vial in stock(hizentra, 10, 2, lot=lot):
        vial_dispense(session=home, vial=vial, actor=tech)
    Dispense.objects.update(dispensed_at=timezone.now() - timedelta(days=2))
    start = (timezone.now() - timedelta(hours=3)).replace(second=0, microsecond=0)
    administration = administration_start(session=clinic, actor=nurse, rate_ml_per_h=Decimal("20"), at=start)
    administration_finish(administration=administration, actor=nurse, at=start + timedelta(hours=2), fates=[
        {"dispense": given[0].pk, "fate": "infused"},
        {"dispense": given[1].pk, "fate": "partial", "volume_left_ml": Decimal("30")},
    ])
    home_infusion_report(session=home, infused_on=local_today() - timedelta(days=1), sites=2, actor=nurse,
                         vials=[{"lot": "HZ-9", "count": 1}])
    recall = recall_create(reference="RC-1", source="manufacturer", recall_class="II", reason="reports",
                           lots=[lot], actor=UserFactory(username="rita", role="recall_coordinator"))
    return recall, start


def test_the_lookback_workbook_gives_the_infusion_times_fates_and_home_use(lot_given_two_ways):
    recall, start = lot_given_two_ways
    ws = load_workbook(io.BytesIO(recall_workbook(recall)))["Patients"]
    header, *body = list(ws.iter_rows(values_only=True))
    rows = [dict(zip(header, row)) for row in body]

    ann = [r for r in rows if r["Patient"] == "Ann Archer"]
    assert {r["Vial fate"] for r in ann} == {"infused whole", "part infused, the rest wasted"}
    assert {r["Where"] for r in ann} == {"given here (infusion centre or ward)"}
    local_start = timezone.localtime(start).replace(tzinfo=None)
    assert all(r["Infusion started"] == local_start for r in ann)
    assert all(r["Infusion ended"] == local_start + timedelta(hours=2) for r in ann)
    assert sorted(r["Volume left (mL)"] or 0 for r in ann) == [0, 30]
    ben = [r for r in rows if r["Patient"] == "Ben Baker"]
    used = sorted((r["Used at home on"] for r in ben), key=lambda d: d or datetime.max)
    assert used[0] == datetime.combine(local_today() - timedelta(days=1), datetime.min.time()) and used[1] is None
    assert {r["Where"] for r in ben} == {"supplied for home use"}


def test_the_lookback_api_gives_the_same(lot_given_two_ways, recall_client):
    recall, _ = lot_given_two_ways
    body = recall_client.get(f"/api/recalls/{recall.pk}/lookback").json()
    lines = [d for p in body["patients"] for d in p["dispenses"]]
    assert {d["fate"] for d in lines} == {"infused", "partial", None}
    assert {d["setting"] for d in lines} == {"clinic", "home"}
    assert [d["used_at_home_on"] for d in lines if d["used_at_home_on"]] == [
        (local_today() - timedelta(days=1)).isoformat()]
    clinic = [d for d in lines if d["setting"] == "clinic"]
    assert all(d["infusion"]["status"] == "finished" and d["infusion"]["ended_at"] for d in clinic)


def test_the_written_out_lines_give_what_drfs_fields_give_with_infusions_fates_and_home_use(lot_given_two_ways):
    from rest_framework import serializers

    from api.recalls import DispenseLineOut
    from recalls.selectors import recall_lookback

    recall, _ = lot_given_two_ways
    dispenses = recall_lookback(recall).dispenses
    assert {(d.session.setting, getattr(getattr(d, "fate", None), "fate", None)) for d in dispenses} >= {
        ("clinic", "infused"), ("clinic", "partial"), ("home", None)}
    serializer = DispenseLineOut(context={})
    for d in dispenses:
        assert serializer.to_representation(d) == serializers.Serializer.to_representation(DispenseLineOut(), d)
