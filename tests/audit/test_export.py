"""The history workbook, read back with openpyxl: sheets, headers, types, diffs, filters."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from audit.export import write_history_workbook
from core.history import audited_save
from audit.registry import audited_models
from audit.selectors import parse_filters
from inventory.models import Vial
from tests.audit.helpers import build_world, read_workbook, summary_counts, summary_value
from tests.factories import InfusionSessionFactory, VialFactory
from traceability.models import InfusionSession

SHEETS = [
    "Timeline",
    "Summary",
    "Products",
    "Presentations",
    "Manufacturers",
    "Lots",
    "Locations",
    "Vials",
    "Patients",
    "Treatment authorisations",
    "Sessions",
    "Dispenses",
    "Brand-switch flags",
    "Reactions",
    "Recalls",
    "Recall lots",
    "Notification tasks",
]
LEAD = ["When (America/New_York)", "Who", "Role", "Action", "Reason", "Object id", "Object", "Changes"]


@pytest.fixture
def world(db):
    return build_world()


def export(tmp_path, **filters):
    path = tmp_path / "history.xlsx"
    result = write_history_workbook(path, parse_filters(**filters), exported_by="ada (auditor)")
    return path, result


def objects(sheet_rows) -> set:
    return {row["Object id"] for row in sheet_rows}


def test_the_workbook_opens_on_the_timeline_then_the_summary_then_each_kind_of_record_with_rows(world, tmp_path):
    path, result = export(tmp_path)

    book = load_workbook(path)
    # No "Exports", "Patient access", "Case packages", "Suspect scans", "Dispense overrides": no rows.
    assert book.sheetnames == SHEETS
    assert book.active.title == "Timeline"
    sheets = read_workbook(path)
    counts = summary_counts(sheets["Summary"])
    assert counts["Sessions"] == 3 and counts["Vials"] == 5 and counts["Dispenses"] == 2
    assert counts["Timeline"] == result.rows == len(sheets["Timeline"]) and counts["Patient access"] == 0
    kinds = {title: n for title, n in counts.items() if title not in ("Timeline", "Patient access")}
    assert sum(kinds.values()) == result.rows
    assert {title: len(rows) for title, rows in sheets.items() if title not in ("Summary", "Timeline")} == kinds


def test_each_sheet_has_a_bold_frozen_filtered_header_with_the_time_zone(world, tmp_path):
    path, _ = export(tmp_path)

    sheet = load_workbook(path)["Sessions"]
    header = [cell.value for cell in sheet[1]]
    assert header[:8] == LEAD
    assert header[8:] == [str(f.verbose_name) for f in audited_models()["sessions"].fields]
    assert "patient" in header and "completed by" in header and "patient_id" not in header
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:{sheet.cell(1, len(header)).column_letter}{sheet.max_row}"
    assert sheet.column_dimensions["G"].width >= 40


def test_cells_are_typed_dates_as_dates_and_numbers_as_numbers(world, tmp_path):
    path, _ = export(tmp_path)

    sessions = read_workbook(path)["Sessions"]
    row = sessions[0]
    assert isinstance(row["When (America/New_York)"], datetime)
    assert row["When (America/New_York)"].tzinfo is None
    assert isinstance(row["Object id"], int)
    assert isinstance(row["ordered grams"], (int, float)) and row["ordered grams"] == 30
    assert isinstance(row["scheduled date"], datetime)  # openpyxl reads date cells as datetimes
    assert row["scheduled date"].date() == world.session.scheduled_date
    vial = read_workbook(path)["Vials"][0]
    assert vial["serial is internal"] is False


def test_when_is_the_local_time_of_the_site(world, tmp_path, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    record = InfusionSession.history.filter(id=world.session.pk).earliest()
    path, _ = export(tmp_path, model="sessions")

    book = load_workbook(path)
    assert book["Sessions"]["A1"].value == "When (Asia/Tokyo)"
    first = read_workbook(path)["Sessions"][0]
    expected = timezone.localtime(record.history_date, timezone.get_fixed_timezone(9 * 60)).replace(tzinfo=None)
    assert abs(first["When (Asia/Tokyo)"] - expected) < timedelta(milliseconds=1)


def test_a_change_shows_what_changed_from_the_previous_record(world, tmp_path):
    path, _ = export(tmp_path)

    changed = [r for r in read_workbook(path)["Sessions"] if r["Action"] == "changed"]
    assert len(changed) == 1
    row = changed[0]
    assert row["Changes"] == "ordered grams: 30 → 35"
    assert (row["Who"], row["Role"], row["Reason"]) == ("phil (Phil Pharm)", "pharmacist", "dose corrected")
    assert row["Object"] == f"session {world.session.pk} · Ann Able (MRN-A) · {world.session.scheduled_date.isoformat()}"


def test_related_records_change_by_label_and_vials_are_labelled_in_words(world, tmp_path):
    path, _ = export(tmp_path, model="vials")

    rows = [r for r in read_workbook(path)["Vials"] if r["Object id"] == world.vial.pk]
    assert [r["Action"] for r in rows] == ["created", "changed", "changed"]
    assert rows[0]["Object"] == "Privigen 10 g · lot P100263 · serial 4711"
    assert rows[0]["Changes"] is None
    assert rows[1]["Changes"] == "location: Fridge A → Room shelf"
    assert rows[2]["Changes"] == "location: Room shelf → (none); status: in stock → dispensed"
    assert rows[0]["location"] == "Fridge A" and rows[0]["lot"] == "P100263" and rows[0]["status"] == "in stock"


def test_rows_are_grouped_by_object_oldest_first(world, tmp_path):
    path, _ = export(tmp_path, model="vials")

    rows = read_workbook(path)["Vials"]
    keys = [(r["Object id"], r["When (America/New_York)"]) for r in rows]
    assert keys == sorted(keys)


def test_the_lot_filter_follows_the_lot_into_vials_dispenses_sessions_and_recalls(world, tmp_path):
    path, result = export(tmp_path, lot="P100263")

    sheets = read_workbook(path)
    assert "Patients" not in sheets and "Products" not in sheets and "Locations" not in sheets
    assert objects(sheets["Lots"]) == {world.lot.pk}
    assert objects(sheets["Vials"]) == {world.vial.pk}
    assert objects(sheets["Dispenses"]) == {world.dispense.pk}
    assert objects(sheets["Sessions"]) == {world.session.pk}
    assert objects(sheets["Brand-switch flags"]) == {world.flag.pk}
    assert objects(sheets["Reactions"]) == {world.reaction.pk}
    assert objects(sheets["Recalls"]) == {world.recall.pk}
    assert objects(sheets["Notification tasks"]) == {world.notification.pk}
    assert ("Lot number", "P100263") in sheets["Summary"]


def test_the_patient_filter_follows_the_patient_into_sessions_dispenses_flags_and_reactions(world, tmp_path):
    path, _ = export(tmp_path, patient="MRN-A")

    sheets = read_workbook(path)
    assert objects(sheets["Patients"]) == {world.patient.pk}
    assert objects(sheets["Sessions"]) == {world.session.pk}
    assert objects(sheets["Dispenses"]) == {world.dispense.pk}
    assert objects(sheets["Brand-switch flags"]) == {world.flag.pk}
    assert objects(sheets["Reactions"]) == {world.reaction.pk}
    assert objects(sheets["Notification tasks"]) == {world.notification.pk}
    assert "Vials" not in sheets and "Lots" not in sheets


def test_the_vial_filter_follows_the_vial_into_its_dispense_and_session(world, tmp_path):
    path, _ = export(tmp_path, vial=world.other_vial.pk)

    sheets = read_workbook(path)
    assert objects(sheets["Vials"]) == {world.other_vial.pk}
    assert objects(sheets["Dispenses"]) == {world.other_dispense.pk}
    assert objects(sheets["Sessions"]) == {world.other_session.pk}
    assert "Lots" not in sheets and "Recalls" not in sheets


def test_filters_combine_lot_and_patient_as_both(world, tmp_path):
    path, _ = export(tmp_path, lot="G200001", patient="MRN-A")

    sheets = read_workbook(path)
    assert "Sessions" not in sheets and "Dispenses" not in sheets


def test_the_model_filter_writes_one_sheet(world, tmp_path):
    path, result = export(tmp_path, model="dispenses")

    assert load_workbook(path).sheetnames == ["Timeline", "Summary", "Dispenses"]
    assert result.sheet_counts == {"dispenses": 2}


def _backdate(model, object_id, *, days: int) -> None:
    history = model.history.model
    for record in history.objects.filter(id=object_id):
        history.objects.filter(pk=record.pk).update(history_date=record.history_date - timedelta(days=days))


def test_since_compares_the_first_change_in_range_with_the_record_before_it(world, tmp_path):
    session = InfusionSessionFactory(ordered_grams=Decimal("30"))
    _backdate(InfusionSession, session.pk, days=30)
    session.ordered_grams = Decimal("40")
    audited_save(session, actor=world.pharmacist, reason="weight gain")

    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    path, _ = export(tmp_path, since=since, model="sessions")

    rows = [r for r in read_workbook(path)["Sessions"] if r["Object id"] == session.pk]
    assert len(rows) == 1
    assert rows[0]["Changes"] == "ordered grams: 30 → 40"


def test_until_is_the_whole_local_day_and_excludes_later_records(world, tmp_path):
    _backdate(Vial, world.other_vial.pk, days=10)
    until = (timezone.localdate() - timedelta(days=10)).isoformat()
    path, _ = export(tmp_path, until=until, model="vials")

    rows = read_workbook(path)["Vials"]
    assert objects(rows) == {world.other_vial.pk}
    assert len(rows) == 2


def test_the_user_filter_keeps_their_records_and_still_diffs_against_anyones(world, tmp_path):
    vial = world.vial
    vial.status = Vial.Status.QUARANTINED
    audited_save(vial, actor=world.pharmacist, reason="lot quarantined")
    path, _ = export(tmp_path, user="phil", model="vials")

    rows = read_workbook(path)["Vials"]
    assert [(r["Who"], r["Changes"]) for r in rows] == [("phil (Phil Pharm)", "status: dispensed → quarantined")]


def test_text_that_looks_like_a_formula_stays_text(world, tmp_path):
    session = world.other_session
    session.notes = "=HYPERLINK(\"http://example.invalid\")"
    audited_save(session, actor=world.pharmacist, reason="=1+2")
    path, _ = export(tmp_path, model="sessions")
    book = load_workbook(path)
    reasons = [c.value for c in book["Sessions"]["E"] if c.value and str(c.value).startswith("=")]
    assert reasons == ["=1+2"]
    assert all(c.data_type != "f" for row in book["Sessions"].iter_rows() for c in row)


def test_scanner_control_characters_are_kept_as_excels_own_escape(world, tmp_path):
    VialFactory(serial="AB\x1dCD")
    path, _ = export(tmp_path, model="vials")
    serials = [r["serial"] for r in read_workbook(path)["Vials"]]
    assert "AB_x001D_CD" in serials


def test_a_sheet_longer_than_the_row_limit_continues_on_a_second_sheet(world, tmp_path):
    path = tmp_path / "split.xlsx"
    write_history_workbook(path, parse_filters(model="vials"), exported_by="ada", max_rows_per_sheet=3)

    sheets = read_workbook(path)
    assert list(sheets) == ["Timeline", "Timeline (2)", "Summary", "Vials", "Vials (2)"]
    assert len(sheets["Vials"]) == 3 and len(sheets["Vials (2)"]) == 2
    assert summary_counts(sheets["Summary"]) == {"Timeline": 5, "Patient access": 0, "Vials": 5}


def test_the_export_reads_in_a_constant_number_of_queries(world, tmp_path, django_assert_num_queries):
    filters = parse_filters()
    with CaptureQueriesContext(connection) as few:
        write_history_workbook(tmp_path / "a.xlsx", filters, exported_by="ada")
    for _ in range(15):
        session = InfusionSessionFactory()
        session.ordered_grams += 1
        audited_save(session, actor=world.pharmacist, reason="more rows")
        VialFactory()
    with django_assert_num_queries(len(few.captured_queries)):
        write_history_workbook(tmp_path / "b.xlsx", filters, exported_by="ada")


def test_a_change_of_user_field_names_the_user(world, tmp_path):
    session = world.session
    session.completed_by = world.pharmacist
    audited_save(session, actor=world.pharmacist, reason="completed")
    path, _ = export(tmp_path, model="sessions", user="phil")

    changes = [r["Changes"] for r in read_workbook(path)["Sessions"]]
    assert changes[-1] == "completed by: (none) → phil (Phil Pharm)"


# The auditor's story: one timeline, names not ids, who looked, nothing matched ---------------------


def test_the_timeline_holds_every_record_once_in_time_order(world, tmp_path):
    path, result = export(tmp_path)

    timeline = read_workbook(path)["Timeline"]
    whens = [row["When (America/New_York)"] for row in timeline]
    assert whens == sorted(whens) and len(timeline) == result.rows
    assert {row["Record"] for row in timeline} >= {"vial", "infusion session", "dispense", "recall"}
    dispensed = [r for r in timeline if r["Record"] == "vial" and r["Record id"] == world.vial.pk]
    assert [r["Action"] for r in dispensed] == ["created", "changed", "changed"]
    assert dispensed[1]["Changes"] == "location: Fridge A → Room shelf"


def test_the_timeline_names_people_and_related_records_instead_of_ids(world, tmp_path):
    path, _ = export(tmp_path)

    timeline = read_workbook(path)["Timeline"]
    dispense = next(r for r in timeline if r["Record"] == "dispense" and r["Record id"] == world.dispense.pk)
    assert (dispense["Who"], dispense["Role"]) == ("tina (Tina Tech)", "technician")
    assert dispense["Object"] == (
        f"dispense {world.dispense.pk}: Privigen 10 g · lot P100263 · serial 4711 → "
        f"session {world.session.pk} · Ann Able (MRN-A) · {world.session.scheduled_date.isoformat()}"
    )
    flag = read_workbook(path)["Brand-switch flags"][0]
    assert flag["raised by"] == f"dispense {world.dispense.pk} (lot P100263, serial 4711)"
    assert flag["differences"] == "excipient"
    assert "_id" not in " ".join(str(h) for h in flag)


def test_a_dispense_closed_by_someone_reads_as_their_name_and_a_return_reads_as_none_to_a_shelf(world, tmp_path):
    dispense = world.dispense
    dispense.status = "returned_to_stock"
    dispense.closed_by = world.pharmacist
    audited_save(dispense, actor=world.pharmacist, reason="returned unopened")
    vial = world.vial
    vial.status = Vial.Status.IN_STOCK
    vial.location = world.vial.history.earliest().location
    audited_save(vial, actor=world.pharmacist, reason="back to stock")
    path, _ = export(tmp_path)

    timeline = read_workbook(path)["Timeline"]
    closed = [r["Changes"] for r in timeline if r["Record"] == "dispense" and r["Reason"] == "returned unopened"]
    back = [r["Changes"] for r in timeline if r["Record"] == "vial" and r["Reason"] == "back to stock"]
    assert closed == ["status: dispensed → returned to stock (unopened); closed by: (none) → phil (Phil Pharm)"]
    assert back == ["location: (none) → Fridge A; status: dispensed → in stock"]


def test_the_access_log_has_its_own_sheet_under_the_same_filters(world, tmp_path, auditor):
    from audit.services import patient_access_record

    patient_access_record(user=auditor, patient_ids=[world.patient.pk, world.other_patient.pk], via="patient-list")
    path, result = export(tmp_path)
    only_a, _ = export(tmp_path / "..", patient="MRN-A")

    access = read_workbook(path)["Patient access"]
    assert result.access_rows == 2 == len(access)
    assert {(r["Who"], r["Patient"], r["Seen through"]) for r in access} == {
        ("ada", "Ann Able (MRN-A)", "patient-list"),
        ("ada", "Bob Baker (MRN-B)", "patient-list"),
    }
    assert [r["Patient"] for r in read_workbook(only_a)["Patient access"]] == ["Ann Able (MRN-A)"]
    assert load_workbook(path).sheetnames[:3] == ["Timeline", "Summary", "Patient access"]


def test_the_lot_filter_keeps_the_access_of_patients_given_the_lot(world, tmp_path, auditor):
    from audit.services import patient_access_record

    patient_access_record(user=auditor, patient_ids=[world.patient.pk, world.other_patient.pk], via="recall-lookup")
    path, _ = export(tmp_path, lot="P100263")

    assert [r["Patient"] for r in read_workbook(path)["Patient access"]] == ["Ann Able (MRN-A)"]


def test_filters_that_match_nothing_say_so_on_the_summary(world, tmp_path):
    future = (timezone.localdate() + timedelta(days=30)).isoformat()
    path, result = export(tmp_path, since=future)

    sheets = read_workbook(path)
    assert result.rows == 0 and sheets["Timeline"] == []
    assert summary_value(sheets["Summary"], "Result").startswith("Nothing matched these filters")
    assert load_workbook(path).sheetnames == ["Timeline", "Summary"]


def test_an_export_prints_the_checkpoint_it_covered_on_its_summary(world, tmp_path):
    from audit.models import Checkpoint, ExportEvent
    from audit.services import history_export

    event = history_export(filters=parse_filters(), path=tmp_path / "h.xlsx", channel="command", operator="ops")

    checkpoint = Checkpoint.objects.get()
    assert event.checkpoint == checkpoint and checkpoint.trigger == "export"
    summary = read_workbook(tmp_path / "h.xlsx")["Summary"]
    assert summary_value(summary, "Checkpoint") == f"#{checkpoint.sequence}"
    assert summary_value(summary, "Merkle root (RFC 6962)") == checkpoint.root
    assert ExportEvent.objects.count() == 1


@pytest.mark.parametrize("kept", [50_000, 1, 0])
def test_the_timeline_diffs_each_record_with_the_one_before_it_however_few_records_it_keeps_at_hand(
    world, tmp_path, monkeypatch, kept
):
    # The Timeline keeps the last record of recent objects at hand and reads the others' previous
    # records from the database: either way each record's Changes are those of its kind's sheet.
    import audit.selectors

    monkeypatch.setattr(audit.selectors, "RECENT_OBJECTS", kept)
    session = InfusionSessionFactory(ordered_grams=Decimal("30"))
    _backdate(InfusionSession, session.pk, days=30)
    session.ordered_grams = Decimal("40")
    audited_save(session, actor=world.pharmacist, reason="weight gain")
    vial = world.vial  # phil, tina, phil: the user filter leaves a gap between phil's two records
    for status, actor in ((Vial.Status.QUARANTINED, world.pharmacist), (Vial.Status.DISPENSED, world.technician),
                          (Vial.Status.QUARANTINED, world.pharmacist)):
        vial.status = status
        audited_save(vial, actor=actor, reason="checked")
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    for filters in ({}, {"since": since}, {"lot": world.vial.lot.lot_number}, {"user": "phil"}):
        path, _ = export(tmp_path, **filters)
        sheets = read_workbook(path)
        nouns = {spec.title: spec.noun for spec in audited_models().values()}
        by_kind = sorted(
            (nouns[title], row["Object id"], row["When (America/New_York)"], row["Changes"] or "")
            for title, rows in sheets.items() if title in nouns for row in rows
        )
        timeline = sorted(
            (row["Record"], row["Record id"], row["When (America/New_York)"], row["Changes"] or "")
            for row in sheets["Timeline"]
        )
        assert timeline == by_kind and sum(1 for *_, changes in timeline if changes) >= 2
    rows = [r for r in read_workbook(export(tmp_path, since=since)[0])["Timeline"] if r["Record id"] == session.pk
            and r["Record"] == "infusion session"]
    assert [r["Changes"] for r in rows] == ["ordered grams: 30 → 40"]
