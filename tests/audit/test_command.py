"""manage.py export_history: a valid workbook, a progress bar on a terminal, plain lines elsewhere."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from audit.models import ExportEvent
from tests.audit.helpers import build_world, read_workbook, summary_counts


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def world(db):
    return build_world()


def test_the_command_writes_a_valid_workbook_and_records_the_export(world, tmp_path):
    out = tmp_path / "lot.xlsx"
    stdout = StringIO()

    call_command("export_history", "--since", "2000-01-01", "--until", "2999-12-31", "--lot", "P100263",
                 "-o", str(out), stdout=stdout)

    sheets = read_workbook(out)
    assert {r["Object id"] for r in sheets["Dispenses"]} == {world.dispense.pk}
    assert summary_counts(sheets["Summary"])["Vials"] == 3
    text = stdout.getvalue()
    assert "\r" not in text and "rows written" in text
    assert "Wrote 12 history rows" in text
    event = ExportEvent.objects.get()
    assert event.channel == "command" and event.exported_by is None
    assert event.filters == {"since": "2000-01-01", "until": "2999-12-31", "lot": "P100263"}
    assert event.row_count == 12


def test_on_a_terminal_the_command_draws_a_progress_bar(world, tmp_path):
    stdout = Terminal()

    call_command("export_history", "--patient", "MRN-A", "--as", "phil", "-o", str(tmp_path / "p.xlsx"), stdout=stdout)

    assert "\r[" in stdout.getvalue() and "100.0%" in stdout.getvalue()
    assert ExportEvent.objects.get().exported_by == world.pharmacist


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "last week"], "since"),
        (["--as", "nobody-at-all"], "No user"),
    ],
)
def test_the_command_refuses_bad_input_and_writes_nothing(world, tmp_path, args, message):
    out = tmp_path / "never.xlsx"
    with pytest.raises(CommandError, match=message):
        call_command("export_history", *args, "-o", str(out), stdout=StringIO())

    assert not out.exists() and not ExportEvent.objects.exists()
