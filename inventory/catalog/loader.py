"""Load catalog.json into Manufacturer, Product and Presentation rows, idempotently and with history.

The file is curated by hand from published labels and monographs. Loading it upserts manufacturers by
name, products by brand and presentations by GTIN; a row is saved only when one of its fields differs,
so a second run changes nothing and writes no history. Nothing is deleted: a product left out of the
file stays in the database, because lots and vials may point at it.
"""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models, transaction

from core.history import audited_save
from core.errors import InvalidInput
from inventory.models import Manufacturer, Presentation, Product, validate_gtin14
from inventory.ndc import gtin_holds_ndc, ndc_agrees_with_gtin, ndc_problem

CATALOG_PATH = Path(__file__).with_name("catalog.json")
REASON = "catalog import"
# GS1 reserves the 952 prefix for demonstrations and examples, so these codes can never be a real carton's.
DEMO_GTIN_PREFIX = "0952"

PRODUCT_FIELDS = (
    "route",
    "concentration_pct",
    "excipient",
    "iga_ug_per_ml",
    "iga_note",
    "room_temp_allowance_days",
    "may_return_to_fridge",
    "room_temp_max_c",
    "shelf_life_months",
    "room_temp_within_months",
)


class CatalogError(InvalidInput):
    code = "invalid_catalog"


def _field_value(model: type[models.Model], name: str, value: Any) -> Any:
    """The value as the database will hand it back, so that comparing before saving is exact."""
    field = model._meta.get_field(name)
    try:
        value = field.to_python(value)
    except ValidationError as exc:
        raise CatalogError(f"{model.__name__}.{name}: {value!r} is not valid ({'; '.join(exc.messages)}).") from exc
    if isinstance(field, models.DecimalField) and value is not None:
        value = value.quantize(Decimal(1).scaleb(-field.decimal_places))
    return value


def _lines(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return value
    raise CatalogError(f"{what} must be a string or a list of strings.")


def read_catalog(path: Path | str | None = None) -> dict:
    """Read and check the whole file before anything is written; every problem fails loudly."""
    path = Path(path) if path else CATALOG_PATH
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh, parse_float=Decimal)
    except FileNotFoundError as exc:
        raise CatalogError(f"Catalog file {path} does not exist.") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"Catalog file {path} is not valid JSON: {exc}.") from exc

    caveat = data.get("caveat", "")
    manufacturers = [m["name"] if isinstance(m, dict) else m for m in data.get("manufacturers", [])]
    if len(set(manufacturers)) != len(manufacturers):
        raise CatalogError("A manufacturer is listed twice.")

    products, presentations, brands, gtins = [], [], set(), set()
    for entry in data.get("products", []):
        brand = entry.get("brand", "")
        if not brand:
            raise CatalogError("A product has no brand.")
        if brand in brands:
            raise CatalogError(f"Brand {brand} is listed twice.")
        brands.add(brand)
        if entry.get("manufacturer") not in manufacturers:
            raise CatalogError(f"{brand}: manufacturer {entry.get('manufacturer')!r} is not in the manufacturers list.")
        if entry.get("route") not in Product.Route.values:
            raise CatalogError(f"{brand}: route {entry.get('route')!r} is not one of {', '.join(Product.Route.values)}.")
        if not isinstance(entry.get("may_return_to_fridge"), bool):
            raise CatalogError(f"{brand}: may_return_to_fridge must be true or false.")
        fields = {name: _field_value(Product, name, entry.get(name)) for name in PRODUCT_FIELDS}
        for name in ("excipient", "iga_note"):
            fields[name] = fields[name] or ""
        if fields["room_temp_max_c"] is None:
            fields["room_temp_max_c"] = Decimal("25.0")
        fields["storage_notes"] = "\n".join(_lines(entry.get("storage_notes", ""), f"{brand}: storage_notes"))
        sources = _lines(entry.get("source_notes", ""), f"{brand}: source_notes")
        fields["source_notes"] = "\n".join([*sources, caveat] if caveat else sources)
        products.append({"brand": brand, "manufacturer": entry["manufacturer"], "fields": fields})

        for item in entry.get("presentations", []):
            gtin = str(item.get("gtin", ""))
            try:
                validate_gtin14(gtin)
            except ValidationError as exc:
                raise CatalogError(f"{brand}: GTIN {gtin!r} is invalid ({'; '.join(exc.messages)}).") from exc
            if gtin in gtins:
                raise CatalogError(f"GTIN {gtin} is listed twice.")
            gtins.add(gtin)
            # The NDC as printed beside the GTIN (10, 11 or 12 digits), never worked out from it.
            ndc = str(item.get("ndc", "") or "")
            if ndc and ndc_problem(ndc):
                raise CatalogError(f"{brand}: {ndc_problem(ndc)}")
            if item.get("demo_gtin"):
                if not gtin.startswith(DEMO_GTIN_PREFIX) or ndc:
                    raise CatalogError(f"{brand}: demo GTIN {gtin} must start with {DEMO_GTIN_PREFIX} and carry no NDC.")
            elif gtin_holds_ndc(gtin) and not ndc:
                raise CatalogError(f"{brand}: GTIN {gtin} is in the US NDC range: give the NDC printed beside it.")
            elif ndc and not ndc_agrees_with_gtin(ndc, gtin):
                # Where the GTIN embeds the NDC, the two printed codes must agree: a typo in either is caught here.
                raise CatalogError(f"{brand}: GTIN {gtin} does not match NDC {ndc}.")
            grams = _field_value(Presentation, "grams", item.get("grams"))
            if grams is None or grams <= 0:
                raise CatalogError(f"{brand}: presentation {gtin} needs a positive number of grams.")
            presentations.append(
                {
                    "gtin": gtin,
                    "brand": brand,
                    "fields": {
                        "grams": grams,
                        "volume_ml": _field_value(Presentation, "volume_ml", item.get("volume_ml")),
                        "ndc": ndc,
                    },
                }
            )
    return {"manufacturers": manufacturers, "products": products, "presentations": presentations}


def _upsert(obj: models.Model | None, model: type[models.Model], key: dict, fields: dict, *, actor, counts) -> models.Model:
    if obj is None:
        obj = audited_save(model(**key, **fields), actor=actor, reason=REASON)
        counts["created"] += 1
        return obj
    changed = [name for name, value in fields.items() if getattr(obj, name) != value]
    if not changed:
        counts["unchanged"] += 1
        return obj
    for name in changed:
        setattr(obj, name, fields[name])
    audited_save(obj, actor=actor, reason=REASON, update_fields=changed)
    counts["updated"] += 1
    return obj


@transaction.atomic
def load_catalog(*, actor=None, path: Path | str | None = None) -> dict:
    """Upsert the catalog; returns how many rows were created, updated and left unchanged."""
    catalog = read_catalog(path)
    counts = {"created": 0, "updated": 0, "unchanged": 0}

    names = catalog["manufacturers"]
    existing = {m.name: m for m in Manufacturer.objects.select_for_update().filter(name__in=names).order_by("pk")}
    makers = {
        name: _upsert(existing.get(name), Manufacturer, {"name": name}, {}, actor=actor, counts=counts)
        for name in names
    }

    brands = [p["brand"] for p in catalog["products"]]
    existing = {p.brand: p for p in Product.objects.select_for_update().filter(brand__in=brands).order_by("pk")}
    products = {}
    for item in catalog["products"]:
        fields = {"manufacturer_id": makers[item["manufacturer"]].pk, **item["fields"]}
        products[item["brand"]] = _upsert(
            existing.get(item["brand"]), Product, {"brand": item["brand"]}, fields, actor=actor, counts=counts
        )

    gtins = [p["gtin"] for p in catalog["presentations"]]
    existing = {
        p.gtin: p
        for p in Presentation.objects.select_for_update().filter(gtin__in=gtins).select_related("product").order_by("pk")
    }
    for item in catalog["presentations"]:
        product = products[item["brand"]]
        current = existing.get(item["gtin"])
        if current is not None and current.product_id != product.pk:
            # Moving a GTIN to another brand would make its vials disagree with their lots' product.
            raise CatalogError(
                f"GTIN {item['gtin']} belongs to {current.product.brand} in the database, not {product.brand}."
            )
        _upsert(
            current,
            Presentation,
            {"gtin": item["gtin"]},
            {"product_id": product.pk, **item["fields"]},
            actor=actor,
            counts=counts,
        )
    return counts
