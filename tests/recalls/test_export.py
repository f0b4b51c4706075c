"""The recall lookback workbook, opened with openpyxl as a person's spreadsheet program would."""

import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from tests.factories import LotFactory
from tests.recalls.test_scenario import build_scenario
from recalls.models import NotificationTask, Recall
from recalls.export import recall_workbook, recall_workbook_filename
from recalls.services import notification_update, recall_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def workbook(recall_coordinator):
    scenario = build_scenario()
    recall = recall_create(
        reference="FDA-2025/1207", source="regulator", recall_class="I", reason="Thrombosis reports",
        lots=scenario.lots, actor=recall_coordinator,
    )
    task = NotificationTask.objects.get(recall=recall, patient=scenario.patients["ann"])
    notification_update(task=task, status="contacted", note="Phoned", actor=recall_coordinator)
    return load_workbook(io.BytesIO(recall_workbook(recall)))


def rows(ws):
    header, *body = list(ws.iter_rows(values_only=True))
    return header, [dict(zip(header, row)) for row in body]


def test_the_workbook_has_a_sheet_per_part_of_the_lookback(workbook):
    assert workbook.sheetnames == ["Recall", "On hand", "Patients", "Notifications"]


@pytest.mark.parametrize("sheet", ["On hand", "Patients", "Notifications"])
def test_every_table_has_a_bold_frozen_header_filters_and_sensible_widths(workbook, sheet):
    ws = workbook[sheet]
    assert all(cell.font.bold for cell in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref.startswith("A1:")
    assert ws.auto_filter.ref.endswith(str(ws.max_row))
    widths = [ws.column_dimensions[cell.column_letter].width for cell in ws[1]]
    assert all(8 <= w <= 60 for w in widths)


def test_the_on_hand_sheet_lists_the_quarantined_vials_with_their_location(workbook):
    header, body = rows(workbook["On hand"])
    assert header[:3] == ("Brand", "Lot", "Expiry")
    assert {(r["Serial"], r["Location code"], r["Status"]) for r in body} == {
        ("A0001", "FRIDGE-A", "Quarantined"),
        ("A0002", "FRIDGE-A", "Quarantined"),
        ("A0003", "RT-1", "Quarantined"),
        ("A0014", "FRIDGE-A", "Quarantined"),
        ("B0010", "FRIDGE-B", "Quarantined"),
    }


def test_dates_are_real_dates(workbook):
    ws = workbook["On hand"]
    expiry = ws.cell(row=2, column=3)
    assert isinstance(expiry.value, datetime)  # openpyxl reads every Excel date back as a datetime
    assert expiry.number_format == "yyyy-mm-dd"
    ws = workbook["Patients"]
    header = [c.value for c in ws[1]]
    session_date = ws.cell(row=2, column=header.index("Session date") + 1)
    dispensed_at = ws.cell(row=2, column=header.index("Dispensed at") + 1)
    assert isinstance(session_date.value, datetime) and session_date.number_format == "yyyy-mm-dd"
    assert isinstance(dispensed_at.value, datetime) and dispensed_at.number_format == "yyyy-mm-dd hh:mm"


def test_the_patients_sheet_has_one_row_per_patient_and_vial(workbook):
    _, body = rows(workbook["Patients"])
    lines = sorted((r["MRN"], r["Patient"], r["Lot"], r["Serial"], r["Outcome"]) for r in body)
    assert lines == [
        ("MRN0001", "Ann Archer", "P100263", "A0004", "Dispensed"),
        ("MRN0001", "Ann Archer", "P100263", "A0005", "Dispensed"),
        ("MRN0001", "Ann Archer", "P100264", "B0011", "Dispensed"),
        ("MRN0002", "Ben Baker", "P100263", "A0006", "returned to stock (unopened)"),
        ("MRN0002", "Ben Baker", "P100263", "A0014", "returned to stock (unopened)"),
        ("MRN0003", "Cat Cole", "P100263", "A0006", "Dispensed"),
        ("MRN0004", "Dan Dunn", "P100263", "A0007", "wasted (opened, partly used)"),
    ]
    assert {r["Brand"] for r in body} == {"Privigen"}
    assert {r["Dispensed by"] for r in body} == {"tess"}
    assert all(isinstance(r["Session"], int) for r in body)


def test_the_notifications_sheet_shows_where_each_patient_stands(workbook):
    _, body = rows(workbook["Notifications"])
    status = {r["MRN"]: (r["Status"], r["Vials"], r["Updated by"] or "") for r in body}
    assert status == {
        "MRN0001": ("Contacted", 3, "rita"),
        "MRN0002": ("Pending", 2, ""),
        "MRN0003": ("Pending", 1, ""),
        "MRN0004": ("Pending", 1, ""),
    }
    ann = next(r for r in body if r["MRN"] == "MRN0001")
    assert ann["Serials"] == "A0004, A0005, B0011"
    assert ann["Note"] == "Phoned"
    assert isinstance(ann["Updated at"], datetime)


def test_the_recall_sheet_summarises_the_recall(workbook):
    facts = {row[0]: row[1] for row in workbook["Recall"].iter_rows(values_only=True)}
    assert facts["Recall"] == "FDA-2025/1207"
    assert facts["Scheme"] == "FDA"
    assert facts["Class"] == "FDA class I: serious adverse health consequences or death are reasonably probable"
    assert facts["Action due"] == "no deadline set"
    assert facts["Patients"] == 4
    assert facts["Patients notified"] == 1
    assert isinstance(facts["Recall date"], datetime)


def test_an_empty_recall_still_makes_a_readable_workbook(recall_coordinator):
    recall = recall_create(
        reference="R-EMPTY", source="internal", recall_class="III", reason="x", lots=[LotFactory()],
        actor=recall_coordinator,
    )
    wb = load_workbook(io.BytesIO(recall_workbook(recall)))
    assert wb["Patients"].max_row == 1
    assert wb["Patients"].auto_filter.ref


def test_the_file_name_is_safe_for_any_reference():
    assert recall_workbook_filename(Recall(pk=3, reference="FDA 2025/12 \"x\"")) == "recall-FDA-2025-12-x-lookback.xlsx"
    assert recall_workbook_filename(Recall(pk=3, reference="///")) == "recall-3-lookback.xlsx"


def test_recall_date_is_written_as_a_date(recall_coordinator):
    recall = recall_create(
        reference="R-D", source="internal", recall_class="III", reason="x", lots=[LotFactory()],
        actor=recall_coordinator, recall_date=date(2025, 12, 7),
    )
    wb = load_workbook(io.BytesIO(recall_workbook(recall)))
    facts = {row[0].value: row for row in wb["Recall"].iter_rows()}
    assert facts["Recall date"][1].value == datetime(2025, 12, 7)
    assert facts["Recall date"][1].number_format == "yyyy-mm-dd"


def test_text_typed_by_people_stays_text(recall_coordinator):
    scenario = build_scenario()
    recall = recall_create(
        reference="=cmd|' /C calc'!A0", source="internal", recall_class="III", reason="=1+1", lots=scenario.lots,
        actor=recall_coordinator,
    )
    task = NotificationTask.objects.get(recall=recall, patient=scenario.patients["ann"])
    notification_update(task=task, status="contacted", note="=HYPERLINK(\"http://x\")\x0b pasted", actor=recall_coordinator)
    wb = load_workbook(io.BytesIO(recall_workbook(recall)))
    _, body = rows(wb["Notifications"])
    note = next(r["Note"] for r in body if r["MRN"] == "MRN0001")
    # The control character is kept as Excel's own escape, as in the history export.
    assert note == '=HYPERLINK("http://x")_x000B_ pasted'
    cell = next(c for c in wb["Notifications"]["H"] if c.value == note)
    assert cell.data_type == "s"
    assert wb["Recall"]["B1"].data_type == "s"
