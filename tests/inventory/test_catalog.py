"""The shipped product catalog: real products, valid and unique GTINs, idempotent and audited loading."""

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from core.history import audited_save
from inventory.catalog.loader import CATALOG_PATH, REASON, CatalogError, load_catalog
from inventory.ndc import ndc_agrees_with_gtin, ndc_problem, ten_digit_readings
from inventory.models import Manufacturer, Presentation, Product, validate_gtin14
from tests.factories import PresentationFactory, ProductFactory, UserFactory

MODELS = (Manufacturer, Product, Presentation)


def row_counts() -> dict:
    return {model.__name__: model.objects.count() for model in MODELS}


def history_counts() -> dict:
    return {model.__name__: model.history.count() for model in MODELS}


def catalog_file() -> dict:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


def write_catalog(tmp_path, data: dict):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture
def loaded(db):
    return load_catalog()


def test_the_catalog_holds_at_least_twelve_brands(loaded):
    assert Product.objects.count() >= 12
    assert Product.objects.count() == len(catalog_file()["products"])


def test_the_first_load_creates_every_row_of_the_file(loaded):
    data = catalog_file()
    expected = len(data["manufacturers"]) + len(data["products"]) + sum(len(p["presentations"]) for p in data["products"])
    assert loaded == {"created": expected, "updated": 0, "unchanged": 0}
    assert sum(row_counts().values()) == expected


def test_every_gtin_has_a_valid_check_digit_and_is_unique(loaded):
    gtins = [p["gtin"] for product in catalog_file()["products"] for p in product["presentations"]]
    assert gtins
    assert len(gtins) == len(set(gtins))
    for gtin in gtins:
        validate_gtin14(gtin)
    assert sorted(Presentation.objects.values_list("gtin", flat=True)) == sorted(gtins)


def test_gammagard_liquid_10_g_keeps_its_ndc_as_printed_beside_its_gtin(loaded):
    vial = Presentation.objects.get(gtin="00309442700050")
    assert vial.product.brand == "Gammagard Liquid"
    assert (vial.ndc, vial.grams, vial.volume_ml) == ("0944-2700-05", Decimal("10"), Decimal("100"))


def test_every_gammagard_liquid_size_carries_its_real_ndc(loaded):
    sizes = {
        p.ndc: (p.grams, p.volume_ml, p.gtin)
        for p in Presentation.objects.filter(product__brand="Gammagard Liquid")
    }
    assert {ndc: (g, ml) for ndc, (g, ml, _) in sizes.items()} == {
        "0944-2700-02": (Decimal("1"), Decimal("10")),
        "0944-2700-03": (Decimal("2.5"), Decimal("25")),
        "0944-2700-04": (Decimal("5"), Decimal("50")),
        "0944-2700-05": (Decimal("10"), Decimal("100")),
        "0944-2700-06": (Decimal("20"), Decimal("200")),
    }
    assert all(ndc_agrees_with_gtin(ndc, gtin) for ndc, (_, _, gtin) in sizes.items())


def test_codes_not_derived_from_a_real_ndc_are_marked_as_demo_gtins_in_the_gs1_example_prefix():
    for product in catalog_file()["products"]:
        for item in product["presentations"]:
            if item["ndc"]:
                assert item["demo_gtin"] is False
                assert ndc_problem(item["ndc"]) is None
                assert ndc_agrees_with_gtin(item["ndc"], item["gtin"])
            else:
                assert item["demo_gtin"] is True
                assert item["gtin"].startswith("0952")
                assert "not a real code" in item["note"].lower()


def test_loading_twice_changes_nothing_and_writes_no_history(loaded):
    rows, history = row_counts(), history_counts()

    again = load_catalog()

    assert again == {"created": 0, "updated": 0, "unchanged": loaded["created"]}
    assert row_counts() == rows
    assert history_counts() == history


def test_history_rows_carry_the_catalog_import_reason_and_the_actor(db):
    actor = UserFactory(username="paul", role="pharmacist")

    load_catalog(actor=actor)

    for model in MODELS:
        rows = model.history.all()
        assert rows.exists()
        assert set(rows.values_list("history_change_reason", flat=True)) == {REASON}
        assert set(rows.values_list("history_user", flat=True)) == {actor.pk}
        assert set(rows.values_list("history_type", flat=True)) == {"+"}


def test_a_product_edited_since_the_last_load_is_put_back_with_one_audited_change(loaded):
    product = Product.objects.get(brand="Gamunex-C")
    product.room_temp_allowance_days = 365
    audited_save(product, actor=None, reason="local edit")
    history = history_counts()

    again = load_catalog()

    assert again["updated"] == 1
    product.refresh_from_db()
    assert product.room_temp_allowance_days == 180
    assert history_counts() == {**history, "Product": history["Product"] + 1}
    latest = product.history.first()
    assert (latest.history_type, latest.history_change_reason) == ("~", REASON)


def test_gamunex_c_may_spend_180_days_at_room_temperature_and_may_not_go_back_to_the_fridge(loaded):
    product = Product.objects.get(brand="Gamunex-C")
    assert product.route == Product.Route.IV_SC
    assert product.room_temp_allowance_days == 180
    assert product.may_return_to_fridge is False
    assert product.manufacturer.name == "Grifols"


def test_privigen_may_stay_at_room_temperature_for_its_whole_shelf_life_and_go_back_to_the_fridge(loaded):
    product = Product.objects.get(brand="Privigen")
    assert product.route == Product.Route.IV
    assert product.excipient == "L-proline (no sucrose)"
    assert product.room_temp_allowance_days == 1095
    assert product.may_return_to_fridge is True


def test_a_product_without_a_known_allowance_is_never_allowed_back_into_the_fridge(loaded):
    unknown = Product.objects.filter(room_temp_allowance_days__isnull=True)
    assert unknown.exists()
    assert not unknown.filter(may_return_to_fridge=True).exists()


def test_subcutaneous_products_are_catalogued_too(loaded):
    assert set(Product.objects.filter(route=Product.Route.SC).values_list("brand", flat=True)) >= {
        "Hizentra",
        "Cuvitru",
        "HyQvia",
        "Xembify",
        "Cutaquig",
    }


def test_every_product_keeps_its_sources_and_the_check_the_label_caveat(loaded):
    for product in Product.objects.all():
        assert "check" in product.source_notes.lower()
    assert "newsroom.csl.com" in Product.objects.get(brand="Privigen").source_notes


def test_a_wrong_check_digit_fails_loudly_and_writes_nothing(db, tmp_path):
    data = catalog_file()
    vial = next(p for p in data["products"] if p["brand"] == "Gamunex-C")["presentations"][0]
    vial["gtin"] = vial["gtin"][:-1] + str((int(vial["gtin"][-1]) + 1) % 10)

    with pytest.raises(CatalogError, match="check digit"):
        load_catalog(path=write_catalog(tmp_path, data))

    assert sum(row_counts().values()) == 0
    assert sum(history_counts().values()) == 0


def test_a_gtin_that_disagrees_with_its_ndc_fails_loudly(db, tmp_path):
    data = catalog_file()
    gammagard = next(p for p in data["products"] if p["brand"] == "Gammagard Liquid")
    gammagard["presentations"][0]["ndc"] = "0944-2700-05"

    with pytest.raises(CatalogError, match="does not match NDC"):
        load_catalog(path=write_catalog(tmp_path, data))

    assert sum(row_counts().values()) == 0


@pytest.mark.parametrize(
    "ndc",
    ["0944-2700-05", "00944-2700-05", "000944-2700-05", "0944270005", "00944270005", "000944270005"],
    ids=["10-digit 4-4-2", "11-digit 5-4-2", "12-digit 6-4-2", "bare 10", "bare 11", "bare 12"],
)
def test_an_ndc_is_stored_as_printed_in_its_10_11_or_12_digit_form(db, tmp_path, ndc):
    data = catalog_file()
    gammagard = next(p for p in data["products"] if p["brand"] == "Gammagard Liquid")
    ten_gram = next(item for item in gammagard["presentations"] if item["gtin"] == "00309442700050")
    ten_gram["ndc"] = ndc

    load_catalog(path=write_catalog(tmp_path, data))

    assert Presentation.objects.get(gtin="00309442700050").ndc == ndc


def test_a_12_digit_ndc_beside_a_gtin_outside_the_ndc_range_is_kept_without_a_derivation(db, tmp_path):
    data = catalog_file()
    cuvitru = next(p for p in data["products"] if p["brand"] == "Cuvitru")
    item = cuvitru["presentations"][0]
    # A real (non-demo) GTIN that does not embed the NDC, as 12-digit NDCs bring (NDC in AI 715).
    item.update(demo_gtin=False, gtin="04012345000016", ndc="000944-2850-01")

    load_catalog(path=write_catalog(tmp_path, data))

    assert Presentation.objects.get(gtin="04012345000016").ndc == "000944-2850-01"


@pytest.mark.parametrize("ndc", ["0944-270-05", "944-2700-05", "0944-2700-005", "09442700051234", "0944 2700 05"])
def test_an_ndc_in_no_known_format_fails_loudly_and_nothing_is_loaded(db, tmp_path, ndc):
    data = catalog_file()
    gammagard = next(p for p in data["products"] if p["brand"] == "Gammagard Liquid")
    gammagard["presentations"][0]["ndc"] = ndc

    with pytest.raises(CatalogError, match="NDC"):
        load_catalog(path=write_catalog(tmp_path, data))

    assert sum(row_counts().values()) == 0


def test_a_real_gtin_in_the_ndc_range_without_its_ndc_fails_loudly(db, tmp_path):
    data = catalog_file()
    gammagard = next(p for p in data["products"] if p["brand"] == "Gammagard Liquid")
    gammagard["presentations"][0]["ndc"] = ""

    with pytest.raises(CatalogError, match="give the NDC printed beside it"):
        load_catalog(path=write_catalog(tmp_path, data))

    assert sum(row_counts().values()) == 0


def test_a_padded_ndc_reads_back_to_each_10_digit_ndc_it_can_stand_for():
    assert ten_digit_readings("0944-2700-05") == {"0944270005"}
    assert ten_digit_readings("69800-0250-01") == {"6980025001", "6980002501"}
    assert ten_digit_readings("069800-0250-01") == {"6980025001", "6980002501"}
    assert ten_digit_readings("12345-6789-01") == {"1234567891"}


def test_a_gtin_that_belongs_to_another_brand_is_refused_and_nothing_changes(db):
    PresentationFactory(gtin="00309442700050", product=ProductFactory(brand="Some Other Brand"))
    rows = row_counts()

    with pytest.raises(CatalogError, match="belongs to Some Other Brand"):
        load_catalog()

    assert row_counts() == rows
    assert not Product.objects.filter(brand="Gammagard Liquid").exists()


def test_the_command_prints_the_counts_and_is_safe_to_run_again(db):
    first, second = StringIO(), StringIO()

    call_command("load_catalog", stdout=first)
    call_command("load_catalog", stdout=second)

    total = sum(row_counts().values())
    assert f"{total} created, 0 updated, 0 unchanged" in first.getvalue()
    assert f"0 created, 0 updated, {total} unchanged" in second.getvalue()


def test_the_command_refuses_a_missing_file_with_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("load_catalog", path=str(tmp_path / "nope.json"), stdout=StringIO())
