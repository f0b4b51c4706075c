"""What the history export covers: one entry per audited model, with its sheet and its human labels.

Labels are built from each history record's own snapshot plus short labels of the objects its
foreign keys point to. Those are fetched in bulk by id (one query per related model and batch of
rows) and kept in a bounded cache, never by a query per row and never in a map that grows with the
number of rows exported.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models

from core.text import grams_text, person_text
from core.roles import primary_role, remember_roles
from audit.models import ExportEvent, ExportJob
from inventory.models import (
    CasePackage, Excursion, ExcursionVial, Lot, Manufacturer, Presentation, Product, ReadingBatch, StorageLocation,
    SuspectScan, Vial,
)
from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, DispenseOverride, InfusionSession, Patient
from traceability.models import TreatmentAuthorisation
from recalls.models import NotificationTask, Recall, RecallLot

User = get_user_model()

# The columns every history record has, before the snapshot's own columns.
HISTORY_COLUMNS = (
    "history_id", "history_date", "history_type", "history_change_reason", "history_user_id", "id", "history_username",
)
ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}


# Short labels of objects that history records point to: model -> (query for ids, label of a row).
def _user_rows(ids):
    users = User.objects.filter(pk__in=ids).prefetch_related("groups")
    for user in users:
        # primary_role() reads the user's groups through this cache; fill it from the prefetch.
        remember_roles(user, (group.name for group in user.groups.all()))
        yield user.pk, (person_text(user.username, user.get_full_name()), primary_role(user))


def _values(model, *fields: str, label: Callable) -> Callable:
    def fetch(ids):
        for row in model._default_manager.filter(pk__in=ids).values_list("pk", *fields):
            yield row[0], label(*row[1:])

    return fetch


TARGETS: dict[type[models.Model], Callable[[list], Iterable[tuple]]] = {
    User: _user_rows,
    Manufacturer: _values(Manufacturer, "name", label=lambda name: name),
    Product: _values(Product, "brand", label=lambda brand: brand),
    Presentation: _values(
        Presentation, "product__brand", "grams", label=lambda brand, grams: f"{brand} {grams_text(grams)} g"
    ),
    Lot: _values(Lot, "lot_number", label=lambda number: number),
    StorageLocation: _values(StorageLocation, "name", label=lambda name: name),
    Vial: _values(
        Vial,
        "presentation__product__brand",
        "presentation__grams",
        "lot__lot_number",
        "serial",
        label=lambda brand, grams, lot, serial: f"{brand} {grams_text(grams)} g · lot {lot} · serial {serial}",
    ),
    Patient: _values(Patient, "name", "mrn", label=lambda name, mrn: f"{name} ({mrn})"),
    InfusionSession: _values(
        InfusionSession,
        "pk",
        "patient__name",
        "patient__mrn",
        "scheduled_date",
        label=lambda pk, name, mrn, day: f"session {pk} · {name} ({mrn}) · {day.isoformat()}",
    ),
    Dispense: _values(
        Dispense,
        "pk",
        "vial__lot__lot_number",
        "vial__serial",
        label=lambda pk, lot, serial: f"dispense {pk} (lot {lot}, serial {serial})",
    ),
    Recall: _values(Recall, "reference", label=lambda reference: reference),
    BrandSwitchFlag: _values(
        BrandSwitchFlag,
        "from_product__brand",
        "to_product__brand",
        label=lambda old, new: f"brand switch {old} → {new}",
    ),
    ExportJob: _values(ExportJob, "status", label=lambda status: f"export job ({status})"),
    Excursion: _values(
        Excursion, "location__code", "started_at",
        label=lambda code, started: f"excursion in {code} from {started:%Y-%m-%d %H:%M}",
    ),
}


class Labels:
    """Labels of related objects by (model, id), fetched in bulk, cached within a fixed bound."""

    MAX_PER_MODEL = 20_000

    def __init__(self) -> None:
        self._cache: dict[type[models.Model], dict] = {}

    def prefetch(self, model: type[models.Model], ids: Iterable) -> None:
        fetch = TARGETS.get(model)
        if fetch is None:
            return
        cache = self._cache.setdefault(model, {})
        missing = {pk for pk in ids if pk is not None and pk not in cache}
        if not missing:
            return
        if len(cache) + len(missing) > self.MAX_PER_MODEL:
            # Note: rows are grouped by object, so a simple reset keeps the working set small.
            cache.clear()
        missing_list = sorted(missing)
        for start in range(0, len(missing_list), 900):  # stay under SQLite's bound-parameter limit
            cache.update(fetch(missing_list[start : start + 900]))
        for pk in missing:
            cache.setdefault(pk, None)  # deleted since: remember that, so it is not asked again

    def get(self, model: type[models.Model], pk):
        if pk is None:
            return None
        cache = self._cache.get(model)
        if cache is None or pk not in cache:
            self.prefetch(model, [pk])
            cache = self._cache.get(model, {})
        return cache.get(pk)

    def text(self, model: type[models.Model], pk) -> str:
        label = self.get(model, pk)
        if label is None:
            return f"#{pk}" if pk is not None else "?"
        return label[0] if isinstance(label, tuple) else label  # users: (username, role)

    def user(self, pk) -> tuple[str, str]:
        """(who, role): "tech (Tina Tech)", "technician"."""
        if pk is None:
            return "", ""
        return self.get(User, pk) or (f"user #{pk}", "")


@dataclass(frozen=True)
class Snapshot:
    """One history row's own values, read by field name; what object labels are built from."""

    names: dict[str, int]
    row: tuple

    def __getitem__(self, name: str):
        return self.row[self.names[name]]


def _label_product(s: Snapshot, labels: Labels) -> str:
    return s["brand"]


def _label_presentation(s: Snapshot, labels: Labels) -> str:
    return f"{labels.text(Product, s['product_id'])} {grams_text(s['grams'])} g"


def _label_lot(s: Snapshot, labels: Labels) -> str:
    return f"{labels.text(Product, s['product_id'])} lot {s['lot_number']}"


def _label_vial(s: Snapshot, labels: Labels) -> str:
    presentation = labels.text(Presentation, s["presentation_id"])
    return f"{presentation} · lot {labels.text(Lot, s['lot_id'])} · serial {s['serial']}"


def _label_session(s: Snapshot, labels: Labels) -> str:
    day = s["scheduled_date"]
    return f"session {s['id']} · {labels.text(Patient, s['patient_id'])} · {day.isoformat() if day else '?'}"


def _label_dispense(s: Snapshot, labels: Labels) -> str:
    return f"dispense {s['id']}: {labels.text(Vial, s['vial_id'])} → {labels.text(InfusionSession, s['session_id'])}"


def _label_flag(s: Snapshot, labels: Labels) -> str:
    return (
        f"brand switch {labels.text(Product, s['from_product_id'])} → {labels.text(Product, s['to_product_id'])}"
        f" (session {s['session_id']})"
    )


def _label_reaction(s: Snapshot, labels: Labels) -> str:
    kind = AdverseReaction.Type(s["type"]).label if s["type"] in AdverseReaction.Type.values else s["type"]
    return f"{kind} ({s['severity']}) in session {s['session_id']}"


def _label_recall_lot(s: Snapshot, labels: Labels) -> str:
    return f"recall {labels.text(Recall, s['recall_id'])} · lot {labels.text(Lot, s['lot_id'])}"


def _label_notification(s: Snapshot, labels: Labels) -> str:
    return f"{labels.text(Recall, s['recall_id'])}: notify {labels.text(Patient, s['patient_id'])} ({s['status']})"


def _label_export(s: Snapshot, labels: Labels) -> str:
    who = labels.user(s["exported_by_id"])[0] or s["operator"] or "unknown"
    return f"export {s['id']} by {who} ({s['channel']})"


def _label_generic(s: Snapshot, labels: Labels) -> str:
    return f"#{s['id']}"


def _choice_words(f) -> dict:
    """Stored choice -> words: an explicit label as written ("returned to supplier"), an automatic
    one ("In Stock", from IN_STOCK) as the value in words ("in stock")."""
    words = {}
    for value, label in f.flatchoices:
        plain = str(value).replace("_", " ")
        words[value] = plain if str(label) == plain.title() else str(label)
    return words


@dataclass
class AuditedModel:
    """One audited model: its filter key, its sheet, and how its history rows are labelled."""

    key: str
    title: str
    model: type[models.Model]
    label: Callable[[Snapshot, Labels], str] = _label_generic
    # Computed from the historical model:
    history_model: type[models.Model] = field(init=False)
    noun: str = field(init=False)  # one record, in words: "vial", "infusion session"
    fields: list = field(init=False)  # the snapshot's fields (the primary key is the Object id column)
    headers: list = field(init=False)  # the fields as people name them: "dispensed by", not dispensed_by_id
    columns: tuple = field(init=False)  # HISTORY_COLUMNS + snapshot attnames, as read from the database
    names: dict = field(init=False)
    foreign_keys: list = field(init=False)  # (column index, related model) for labelled diffs
    choices: dict = field(init=False)  # column index -> {stored value: label}

    def __post_init__(self) -> None:
        self.history_model = self.model.history.model
        self.noun = str(self.model._meta.verbose_name)
        self.fields = [f for f in self.history_model.tracked_fields if f.attname != "id"]
        self.headers = [str(f.verbose_name) for f in self.fields]
        self.columns = HISTORY_COLUMNS + tuple(f.attname for f in self.fields)
        self.names = {name: index for index, name in enumerate(self.columns)}
        self.foreign_keys = [
            (self.names[f.attname], f.related_model)
            for f in self.fields
            if f.is_relation and f.many_to_one and f.related_model in TARGETS
        ]
        self.choices = {self.names[f.attname]: _choice_words(f) for f in self.fields if f.choices}

    def snapshot(self, row: tuple) -> Snapshot:
        return Snapshot(self.names, row)


_KNOWN = [
    AuditedModel("products", "Products", Product, _label_product),
    AuditedModel("presentations", "Presentations", Presentation, _label_presentation),
    AuditedModel("manufacturers", "Manufacturers", Manufacturer, lambda s, labels: s["name"]),
    AuditedModel("lots", "Lots", Lot, _label_lot),
    AuditedModel("locations", "Locations", StorageLocation, lambda s, labels: s["name"]),
    AuditedModel("vials", "Vials", Vial, _label_vial),
    AuditedModel("cases", "Case packages", CasePackage, lambda s, labels: f"case GTIN {s['gtin']}"),
    AuditedModel("suspect_scans", "Suspect scans", SuspectScan,
                 lambda s, labels: f"suspect scan of {labels.text(Vial, s['vial_id'])} as lot {s['scanned_lot']}"),
    AuditedModel("patients", "Patients", Patient, lambda s, labels: f"{s['name']} ({s['mrn']})"),
    AuditedModel(
        "authorisations", "Treatment authorisations", TreatmentAuthorisation,
        lambda s, labels: f"authorisation {s['payer_reference'] or '#' + str(s['id'])} · "
                          f"{labels.text(Patient, s['patient_id'])} ({s['status']})",
    ),
    AuditedModel("sessions", "Sessions", InfusionSession, _label_session),
    AuditedModel("dispenses", "Dispenses", Dispense, _label_dispense),
    AuditedModel("flags", "Brand-switch flags", BrandSwitchFlag, _label_flag),
    AuditedModel(
        "overrides", "Dispense overrides", DispenseOverride,
        lambda s, labels: f"override of {s['check_code']} for session {s['session_id']} ({s['status']})",
    ),
    AuditedModel("reactions", "Reactions", AdverseReaction, _label_reaction),
    AuditedModel("recalls", "Recalls", Recall, lambda s, labels: f"recall {s['reference']}"),
    AuditedModel("recall_lots", "Recall lots", RecallLot, _label_recall_lot),
    AuditedModel("notifications", "Notification tasks", NotificationTask, _label_notification),
    AuditedModel("exports", "Exports", ExportEvent, _label_export),
    # The cold chain.
    AuditedModel("reading_batches", "Temperature readings", ReadingBatch,
                 lambda s, labels: f"{s['readings']} readings of {labels.text(StorageLocation, s['location_id'])}"),
    AuditedModel("excursions", "Cold-chain excursions", Excursion,
                 lambda s, labels: f"excursion in {labels.text(StorageLocation, s['location_id'])} ({s['status']})"),
    AuditedModel("excursion_vials", "Excursion vials", ExcursionVial,
                 lambda s, labels: f"{labels.text(Vial, s['vial_id'])} in {labels.text(Excursion, s['excursion_id'])} "
                                   f"({s['outcome']})"),
]


def _build_registry() -> dict[str, AuditedModel]:
    registry = {spec.key: spec for spec in _KNOWN}
    known = {spec.model for spec in _KNOWN}
    # A model given HistoricalRecords later still reaches the workbook, with a plain "#id" label.
    for model in apps.get_models():
        if model in known or not hasattr(model._meta, "simple_history_manager_attribute"):
            continue
        if model._meta.app_label not in ("inventory", "traceability", "audit"):
            continue
        key = model._meta.model_name
        registry[key] = AuditedModel(key, str(model._meta.verbose_name_plural).capitalize()[:31], model)
    return registry


_registry: dict[str, AuditedModel] | None = None


def audited_models() -> dict[str, AuditedModel]:
    """Every audited model, by filter key, in the order of the workbook's sheets."""
    global _registry
    if _registry is None:
        _registry = _build_registry()
    return _registry
