"""A hospital network's database at scale, for `python -m bench run`.

    python -m bench generate --vials 1000000 --patients 100000 [--seed N] [--today YYYY-MM-DD]
    python -m bench generate --quick              # 10,000 vials, 1,000 patients (CI)

The real catalog (inventory/catalog/catalog.json), locations at eight sites, a lot of each product
every two weeks for three years, patients on regular infusions every 3–4 weeks (2–6 vials each) and
patients treated once, brand switches with their acknowledged flags, adverse reactions, recalls with
their notification tasks, stock on the shelves today and the sessions scheduled for today; every row
with its history rows (who, when, why), as the services would have written them.

Rows go in with PostgreSQL's COPY or SQLite's executemany, never through the ORM one row at a
time: a million vials take ~2 minutes on PostgreSQL. The same seed and the same `--today` give the
same database, row for row. The database is emptied first: never point this at real data.

Names the benchmark looks for: the patient MRN0000000 with 100 infusion sessions, and the lot
BIGLOT-5000 with 5,000 vials dispensed (scaled down with --quick), which a recall names.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta
from decimal import Decimal

from django.db import transaction

HISTORY_PATIENT_MRN = "MRN0000000"
HISTORY_PATIENT_SESSIONS = 100
BIG_LOT_NUMBER = "BIGLOT-5000"
BIG_LOT_DISPENSED = 5000
TODAY_ORDERED_GRAMS = Decimal("40.00")
PASSWORD = "bench-pass-2026"

SITES = ["Main", "North", "South", "East", "West", "Children's", "Oncology", "Outpatient"]
GIVEN_NAMES = ["Ada", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kemal", "Lena",
               "Marta", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wim", "Yara", "Zoe"]
FAMILY_NAMES = ["Adams", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito", "Jensen",
                "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Rossi", "Silva", "Tanaka",
                "Ueda", "Varga", "Weber", "Xu", "Young", "Zhang"]
CHRONIC = ["primary_immunodeficiency", "cidp", "myasthenia_gravis"]
ACUTE = ["kawasaki", "guillain_barre", "itp"]
REACTIONS = [("headache", "mild"), ("fever_chills", "mild"), ("nausea", "mild"), ("fatigue", "mild"),
             ("muscle_aches", "moderate"), ("allergic_reaction", "moderate"), ("aseptic_meningitis", "severe")]


# --- writing rows in bulk ----------------------------------------------------------------------


class Sink:
    """Rows per table, written in batches: COPY on PostgreSQL, executemany on SQLite. Every row is
    a dict of attnames; fields left out take their default (computed once per table)."""

    BATCH = 20_000

    def __init__(self, connection):
        self.connection = connection
        self.postgres = connection.vendor == "postgresql"
        self.tables: dict = {}
        self.rows: dict = defaultdict(list)
        self.counts: dict = defaultdict(int)
        self.next_id: dict = defaultdict(lambda: 1)
        self.history_models: dict = {}

    def _table(self, model):
        spec = self.tables.get(model)
        if spec is None:
            fields = model._meta.concrete_fields
            defaults = []
            for f in fields:
                if f.has_default():
                    value = f.get_default()
                elif f.null:
                    value = None
                else:
                    value = "" if f.get_internal_type() in ("CharField", "TextField") else None
                defaults.append((f.attname, value))
            converters = [self._converter(f) for f in fields]
            columns = ", ".join(connection_quote(self.connection, f.column) for f in fields)
            spec = self.tables[model] = (model._meta.db_table, columns, defaults, converters)
        return spec

    def _converter(self, f):
        if self.postgres:
            if f.get_internal_type() == "JSONField":
                return lambda v: None if v is None else json.dumps(v)
            return None
        kind = f.get_internal_type()
        if kind == "DateTimeField":
            return lambda v: None if v is None else v.replace(tzinfo=None).isoformat(" ")
        if kind == "DateField":
            return lambda v: None if v is None else v.isoformat()
        if kind == "DecimalField":
            return lambda v: None if v is None else str(v)
        if kind == "BooleanField":
            return lambda v: None if v is None else int(v)
        if kind == "JSONField":
            return lambda v: None if v is None else json.dumps(v)
        if kind == "DurationField":
            # Django keeps a duration in SQLite as a whole number of microseconds.
            return lambda v: None if v is None else (v.days * 86_400 + v.seconds) * 1_000_000 + v.microseconds
        return None

    def new_id(self, model) -> int:
        pk = self.next_id[model]
        self.next_id[model] = pk + 1
        return pk

    def add(self, model, **values) -> int:
        """Queue one row; returns its primary key (given, or the next one of the table)."""
        pk_name = model._meta.pk.attname
        if values.get(pk_name) is None:
            values[pk_name] = self.new_id(model)
        _, _, defaults, _ = self._table(model)
        self.rows[model].append(tuple(values.get(name, default) for name, default in defaults))
        if len(self.rows[model]) >= self.BATCH:
            self.flush(model)
        return values[pk_name]

    def history(self, model, values: dict, *, kind: str, when: datetime, reason: str, user_id: int | None) -> None:
        """A historical row of `model` (django-simple-history) holding `values` as they were at `when`."""
        history = self.history_models.get(model)
        if history is None:
            # `Model.history` builds a manager on each access: far too slow for millions of rows.
            history = self.history_models[model] = model.history.model
        self.add(history, **values, history_date=when, history_type=kind,
                 history_change_reason=reason, history_user_id=user_id)

    def flush(self, model=None) -> None:
        for m in [model] if model is not None else list(self.rows):
            rows = self.rows[m]
            if not rows:
                continue
            table, columns, _, converters = self._table(m)
            if any(converters):
                rows = [tuple(c(v) if c else v for c, v in zip(converters, row)) for row in rows]
            with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
                if self.postgres:
                    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(rows[0]))
                    cursor.cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            self.counts[m._meta.label] += len(rows)
            self.rows[m] = []


def connection_quote(connection, name: str) -> str:
    return connection.ops.quote_name(name)


# --- the plan ----------------------------------------------------------------------------------


@dataclass
class LotPlan:
    pk: int
    product_id: int
    lot_number: str
    created: date
    expiry: date
    status: str = "released"
    recall_id: int | None = None


@dataclass
class Catalog:
    products: list  # Product rows that have presentations
    presentations: dict  # product id -> [Presentation]
    weights: list  # relative popularity, same order as products
    lots: dict = field(default_factory=dict)  # product id -> [LotPlan] by creation date


def aware(day: date, hour: int, minute: int = 0):
    from django.utils import timezone

    return timezone.make_aware(datetime.combine(day, dtime(hour, minute)))


def generate(*, vials: int, patients: int, seed: int = 7, today: date | None = None, out=print) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from core.roles import ensure_roles
    from inventory.catalog.loader import load_catalog
    from inventory.models import Lot, Presentation, Product, StorageLocation, Vial
    from recalls.models import NotificationTask, Recall, RecallLot
    from traceability.models import AdverseReaction, BrandSwitchFlag, Dispense, InfusionSession, Patient
    from traceability.services import product_differences

    started = time.monotonic()
    rng = random.Random(seed)
    today = today or timezone.localdate()
    start = today - timedelta(days=3 * 365)
    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    ensure_roles(Group)
    out(f"migrated and emptied in {time.monotonic() - started:.1f} s")
    prepare_connection(connection)
    sink = Sink(connection)
    out(f"emptied and migrated {connection.vendor} database {connection.settings_dict['NAME']}")

    # Users (one password hash for all) and roles: the benchmark logs in as these (bench.run makes
    # their API tokens when it starts, since knox keeps only a token's digest).
    hashed = make_password(PASSWORD)
    users: dict[str, list[int]] = defaultdict(list)
    groups = {g.name: g.pk for g in Group.objects.all()}
    people = [("tech", "technician", 8), ("pharm", "pharmacist", 4), ("recall", "recall_coordinator", 2),
              ("audit", "auditor", 2)]
    with transaction.atomic():
        for prefix, role, count in people:
            for n in range(1, count + 1):
                user = User.objects.create(username=f"bench_{prefix}{n}", password=hashed,
                                           date_joined=aware(start, 8))
                user.groups.add(groups[role])
                users[role].append(user.pk)
        load_catalog(actor=None)

    techs, pharms = users["technician"], users["pharmacist"]
    products = list(Product.objects.filter(presentations__isnull=False).distinct().order_by("pk"))
    presentations: dict[int, list] = defaultdict(list)
    for p in Presentation.objects.order_by("grams", "pk"):
        presentations[p.product_id].append(p)
    # Popularity: a few brands carry most of the volume, as in a real formulary.
    weights = [1.0 / (1 + i) ** 0.8 for i in range(len(products))]
    rng.shuffle(weights)
    catalog = Catalog(products=products, presentations=presentations, weights=weights)
    product_by_id = {p.pk: p for p in products}
    for model in (Lot, StorageLocation, Vial, Patient, InfusionSession, Dispense, BrandSwitchFlag,
                  AdverseReaction, Recall, RecallLot, NotificationTask):
        sink.next_id[model] = (model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    for model in (Lot, StorageLocation, Vial, Patient, InfusionSession, Dispense, BrandSwitchFlag,
                  AdverseReaction, Recall, RecallLot, NotificationTask):
        history = model.history.model
        sink.next_id[history] = (history.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1

    # Locations: two fridges, a room-temperature shelf and a quarantine cabinet per site.
    fridges, shelves, quarantines = [], [], []
    for s, site in enumerate(SITES):
        for name, code, kind, bucket in (
            (f"{site} pharmacy fridge A", f"S{s}-FRIDGE-A", "refrigerator", fridges),
            (f"{site} pharmacy fridge B", f"S{s}-FRIDGE-B", "refrigerator", fridges),
            (f"{site} room-temperature shelf", f"S{s}-RT-1", "room_temperature", shelves),
            (f"{site} quarantine cabinet", f"S{s}-QUAR", "quarantine", quarantines),
        ):
            row = dict(name=name, code=code, kind=kind, active=True)
            row["id"] = sink.add(StorageLocation, **row)
            sink.history(StorageLocation, row, kind="+", when=aware(start, 7), reason="location set up",
                         user_id=pharms[0])
            bucket.append(row)
    code_of = {row["id"]: row["code"] for row in fridges + shelves + quarantines}

    # Lots: one per product every two weeks from two years before the window; 24–36 months' expiry.
    first_lot = start - timedelta(days=730)
    for product in products:
        prefix = "".join(ch for ch in product.brand.upper() if ch.isalpha())[:3]
        plans = []
        day, seq = first_lot, 0
        while day <= today:
            seq += 1
            plan = LotPlan(pk=sink.new_id(Lot), product_id=product.pk, lot_number=f"{prefix}{day:%y}{seq:04d}",
                           created=day, expiry=day + timedelta(days=rng.randrange(730, 1096)))
            plans.append(plan)
            day += timedelta(days=14)
        catalog.lots[product.pk] = plans
    # The lot the recall benchmark looks up: the most used brand, given to thousands of patients.
    scale = min(1.0, vials / 1_000_000)
    big_target = max(50, int(BIG_LOT_DISPENSED * scale)) if scale < 1 else BIG_LOT_DISPENSED
    big_product = products[max(range(len(products)), key=lambda i: weights[i])]
    big = LotPlan(pk=sink.new_id(Lot), product_id=big_product.pk, lot_number=BIG_LOT_NUMBER,
                  created=today - timedelta(days=420), expiry=today + timedelta(days=500))
    big_given = 0

    # Recalls: the big lot, and two older lots of other brands.
    recalls = []
    others = [p for p in products if p.pk != big_product.pk] or products
    recalled_plans = [big] + [rng.choice(catalog.lots[rng.choice(others).pk][:-40] or catalog.lots[others[0].pk])
                              for _ in range(2)]
    for n, plan in enumerate(recalled_plans, start=1):
        recall_date = max(plan.created + timedelta(days=200), today - timedelta(days=60 * n))
        recall_id = sink.new_id(Recall)
        recalls.append((recall_id, plan, recall_date))
        plan.status, plan.recall_id = "recalled", recall_id

    dispensed_target = int(vials * 0.79)
    per_session = 4
    sessions_target = dispensed_target / per_session
    # Chronic patients (every 3–4 weeks for ~1.4 years on average) and patients treated once.
    chronic_sessions = 21
    share = max(0.01, min(0.9, (sessions_target / max(1, patients) - 1) / (chronic_sessions - 1)))

    counters = defaultdict(int)
    notify: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))  # recall -> patient -> vials
    last_product: dict[int, int] = {}
    chronic_patients: list[tuple[int, int]] = []  # (patient id, product id)

    def lot_for(product_id: int, day: date) -> LotPlan:
        if (product_id == big.product_id and big_given < big_target and big.created + timedelta(days=10) <= day
                and rng.random() < 0.5):
            return big
        plans = catalog.lots[product_id]
        index = min(len(plans) - 1, max(0, (day - first_lot).days - 10) // 14)
        return plans[index]

    def pick_presentation(product_id: int):
        options = catalog.presentations[product_id]
        return options[min(len(options) - 1, int(rng.random() ** 1.5 * len(options)))]

    def vial_row(plan: LotPlan, presentation, received: datetime, location_id, status: str) -> dict:
        pk = sink.new_id(Vial)
        return dict(id=pk, presentation_id=presentation.pk, lot_id=plan.pk, serial=f"SN{pk:09d}",
                    serial_is_internal=False, location_id=location_id, status=status, room_temp_since=None,
                    beyond_use_date=plan.expiry, received_at=received)

    def receive(row: dict, when: datetime, user: int) -> None:
        sink.history(Vial, dict(row, status="in_stock", location_id=row["_received_into"], room_temp_since=None),
                     kind="+", when=when, reason=f"received into {code_of[row['_received_into']]}", user_id=user)

    def infuse(patient_id: int, day: date, product_id: int, indication: str, site: str, status: str = "completed") -> None:
        nonlocal big_given
        session_id = sink.new_id(InfusionSession)
        tech = techs[session_id % len(techs)]
        created = aware(day - timedelta(days=14), 10)
        # The route the brand is given by (a product for both routes: intravenously).
        route = "SC" if product_by_id[product_id].route == "SC" else "IV"
        row = dict(id=session_id, patient_id=patient_id, scheduled_date=day, site=site, indication=indication,
                   route=route, ordered_grams=Decimal("0"), status="scheduled", created_at=created)
        if status != "completed":
            row["ordered_grams"] = TODAY_ORDERED_GRAMS
            sink.add(InfusionSession, **row)
            sink.history(InfusionSession, row, kind="+", when=created, reason=f"infusion ordered for MRN{patient_id - 1:07d}",
                         user_id=pharms[0])
            counters["sessions"] += 1
            return
        n = rng.randint(2, 6)
        plan = lot_for(product_id, day)
        start_at = aware(day, 9, rng.randrange(0, 50))
        given = Decimal("0")
        first_dispense = None
        for k in range(n):
            presentation = pick_presentation(product_id)
            received = aware(plan.created + timedelta(days=rng.randrange(3, 10)), 8, rng.randrange(0, 60))
            fridge = fridges[rng.randrange(len(fridges))]
            vrow = vial_row(plan, presentation, received, None, "dispensed")
            vrow["_received_into"] = fridge["id"]
            when = start_at + timedelta(minutes=2 * k)
            outcome = rng.random()
            dstatus = "dispensed" if outcome > 0.025 else ("wasted" if outcome > 0.01 else "returned_to_stock")
            if dstatus == "returned_to_stock":
                vrow.update(status="in_stock", location_id=fridge["id"])
            elif dstatus == "wasted":
                vrow["status"] = "wasted"
            receive(vrow, received, tech)
            dispense_reason = f"dispense to session {session_id}"
            sink.history(Vial, dict(vrow, status="dispensed", location_id=None), kind="~", when=when,
                         reason=dispense_reason, user_id=tech)
            drow = dict(session_id=session_id, vial_id=vrow["id"], product_id=product_id, grams=presentation.grams,
                        dispensed_by_id=tech, dispensed_at=when, status="dispensed")
            drow["id"] = sink.new_id(Dispense)
            sink.history(Dispense, dict(drow), kind="+", when=when, reason=dispense_reason, user_id=tech)
            if dstatus != "dispensed":
                closed = when + timedelta(hours=2)
                why = "vial not needed" if dstatus == "returned_to_stock" else "partly used"
                drow.update(status=dstatus, closed_reason=why, closed_by_id=tech, closed_at=closed)
                reason = (f"returned unopened from session {session_id}: {why}" if dstatus == "returned_to_stock"
                          else f"wasted after opening in session {session_id}: {why}")
                sink.history(Dispense, drow, kind="~", when=closed, reason=reason, user_id=tech)
                sink.history(Vial, {k: v for k, v in vrow.items() if not k.startswith("_")}, kind="~", when=closed,
                             reason=reason, user_id=tech)
            if dstatus != "returned_to_stock":
                given += presentation.grams
            sink.add(Vial, **{k: v for k, v in vrow.items() if not k.startswith("_")})
            sink.add(Dispense, **drow)
            counters["dispenses"] += 1
            first_dispense = first_dispense or drow["id"]
            if plan is big:
                big_given += 1
            if plan.recall_id is not None:
                notify[plan.recall_id][patient_id].append(vrow["id"])
        row.update(ordered_grams=given or Decimal("10.00"))
        sink.history(InfusionSession, row, kind="+", when=created, reason=f"infusion ordered for MRN{patient_id - 1:07d}",
                     user_id=pharms[0])
        sink.history(InfusionSession, dict(row, status="in_progress"), kind="~", when=start_at,
                     reason=f"infusion started: dispense to session {session_id}", user_id=tech)
        completed = aware(day, 15, rng.randrange(0, 60))
        row.update(status="completed", grams_dispensed=given, completed_at=completed, completed_by_id=tech)
        sink.add(InfusionSession, **row)
        sink.history(InfusionSession, row, kind="~", when=completed,
                     reason=f"completed: {given} g dispensed of {row['ordered_grams']} g ordered", user_id=tech)
        counters["sessions"] += 1

        previous = last_product.get(patient_id)
        if previous is not None and previous != product_id:
            old, new = product_by_id[previous], product_by_id[product_id]
            frow = dict(session_id=session_id, kind="switch", from_product_id=old.pk, to_product_id=new.pk,
                        differences=product_differences(old, new), raised_by_id=first_dispense, raised_at=start_at,
                        status="open")
            frow["id"] = sink.new_id(BrandSwitchFlag)
            sink.history(BrandSwitchFlag, dict(frow), kind="+", when=start_at,
                         reason=f"brand switch {old.brand} → {new.brand} in session {session_id}", user_id=tech)
            acked = start_at + timedelta(minutes=30)
            frow.update(status="acknowledged", reason="shortage", acknowledged_by_id=pharms[session_id % len(pharms)],
                        acknowledged_at=acked)
            sink.add(BrandSwitchFlag, **frow)
            sink.history(BrandSwitchFlag, frow, kind="~", when=acked,
                         reason=f"brand switch {old.brand} → {new.brand} acknowledged (shortage)",
                         user_id=frow["acknowledged_by_id"])
            counters["flags"] += 1
        last_product[patient_id] = product_id
        if rng.random() < 0.02:
            kind, severity = REACTIONS[rng.randrange(len(REACTIONS))]
            onset = start_at + timedelta(hours=2)
            rrow = dict(session_id=session_id, type=kind, severity=severity, onset_at=onset, recorded_by_id=tech,
                        recorded_at=onset + timedelta(minutes=20))
            rrow["id"] = sink.new_id(AdverseReaction)
            sink.add(AdverseReaction, **rrow)
            sink.history(AdverseReaction, rrow, kind="+", when=rrow["recorded_at"],
                         reason=f"adverse reaction recorded in session {session_id}", user_id=tech)
            counters["reactions"] += 1

    def pick_product() -> int:
        return rng.choices(products, weights=weights)[0].pk

    # Patients and their infusions, oldest first.
    for i in range(patients):
        born = date(1935, 1, 1) + timedelta(days=rng.randrange(0, 85 * 365))
        prow = dict(id=sink.new_id(Patient), mrn=f"MRN{i:07d}",
                    name=f"{FAMILY_NAMES[rng.randrange(len(FAMILY_NAMES))]}, {GIVEN_NAMES[rng.randrange(len(GIVEN_NAMES))]} {i}",
                    date_of_birth=born, weight_kg=Decimal(rng.randrange(300, 1100)) / 10,
                    iga_deficient=rng.random() < 0.02, allergy_notes="")
        registered = aware(start + timedelta(days=rng.randrange(0, 1000)), 8)
        sink.add(Patient, **prow)
        sink.history(Patient, prow, kind="+", when=registered, reason="patient registered", user_id=pharms[0])
        site = f"{SITES[i % len(SITES)]} infusion centre"
        product_id = pick_product()
        if counters["dispenses"] >= dispensed_target:
            continue  # registered, not infused yet
        if i == 0:
            # The patient-history benchmark: 100 infusions, every ten days.
            for k in range(HISTORY_PATIENT_SESSIONS):
                infuse(prow["id"], today - timedelta(days=10 * (HISTORY_PATIENT_SESSIONS - k)), product_id,
                       "primary_immunodeficiency", site)
        elif rng.random() < share:
            day = start + timedelta(days=rng.randrange(0, 3 * 365 - 60))
            indication = CHRONIC[rng.randrange(len(CHRONIC))]
            while day < today:
                if rng.random() < 0.03:
                    product_id = pick_product()  # a switch: shortage, formulary or payer
                infuse(prow["id"], day, product_id, indication, site)
                day += timedelta(days=rng.randint(21, 28))
            chronic_patients.append((prow["id"], product_id))
        else:
            day = start + timedelta(days=rng.randrange(0, 3 * 365))
            infuse(prow["id"], min(day, today - timedelta(days=1)), product_id, ACUTE[rng.randrange(len(ACUTE))], site)

    out(f"patients and infusions in {time.monotonic() - started:.1f} s")
    # Today's infusion list: open sessions of patients on regular infusions (the dispense benchmark),
    # each with the vials of its dose put aside in a fridge: the patient's brand, a released lot well
    # within its expiry, so the benchmark finds a few vials for every session and its clients rarely
    # wait on the same session's lock.
    todays = chronic_patients[: max(100, patients // 50)]
    for patient_id, product_id in todays:
        infuse(patient_id, today, product_id, "primary_immunodeficiency", "Main infusion centre", status="scheduled")
    for patient_id, product_id in todays:
        plan = next((p for p in reversed(catalog.lots[product_id]) if p.recall_id is None
                     and p.created <= today - timedelta(days=10) and p.expiry > today + timedelta(days=60)), None)
        if plan is None:
            continue
        left = TODAY_ORDERED_GRAMS
        for _ in range(6):
            presentation = pick_presentation(product_id)
            if presentation.grams > left:
                break
            left -= presentation.grams
            received = aware(max(plan.created + timedelta(days=3), today - timedelta(days=rng.randrange(1, 30))), 8,
                             rng.randrange(0, 60))
            fridge = fridges[rng.randrange(len(fridges))]
            vrow = vial_row(plan, presentation, received, fridge["id"], "in_stock")
            vrow["_received_into"] = fridge["id"]
            receive(vrow, received, techs[rng.randrange(len(techs))])
            sink.add(Vial, **{k: v for k, v in vrow.items() if not k.startswith("_")})
            counters["shelf_vials"] += 1

    # Stock on the shelves and what left them otherwise, until the vial count is reached.
    live_lots = [plan for plans in catalog.lots.values() for plan in plans
                 if plan.created <= today - timedelta(days=10) and plan.expiry > today + timedelta(days=60)]
    live_weights = [weights[products.index(product_by_id[plan.product_id])] for plan in live_lots]
    old_lots = [plan for plans in catalog.lots.values() for plan in plans if plan.created < today - timedelta(days=60)]
    while sink.next_id[Vial] <= vials:
        fate = rng.random()
        plan = (rng.choices(live_lots, weights=live_weights)[0] if fate < 0.9 else old_lots[rng.randrange(len(old_lots))])
        if plan.recall_id is None and big.recall_id is not None and fate < 0.002:
            plan = big
        presentation = pick_presentation(plan.product_id)
        received_day = min(today - timedelta(days=1), plan.created + timedelta(days=rng.randrange(3, 200)))
        received = aware(received_day, 8, rng.randrange(0, 60))
        fridge = fridges[rng.randrange(len(fridges))]
        tech = techs[rng.randrange(len(techs))]
        vrow = vial_row(plan, presentation, received, fridge["id"], "in_stock")
        vrow["_received_into"] = fridge["id"]
        receive(vrow, received, tech)
        product = product_by_id[plan.product_id]
        if fate >= 0.9 or plan.expiry <= today:
            # Gone from the shelf: wasted (expired, damaged) or returned to the supplier.
            verb, status = (("wasted", "wasted") if fate < 0.97 else ("returned to supplier", "returned"))
            gone = received + timedelta(days=rng.randrange(1, 60))
            vrow.update(status=status, location_id=None)
            sink.history(Vial, {k: v for k, v in vrow.items() if not k.startswith("_")}, kind="~", when=gone,
                         reason=f"{verb}: {'damaged carton' if verb == 'wasted' else 'supplier credit'}", user_id=tech)
        elif product.room_temp_allowance_days and fate < 0.1:
            shelf = shelves[rng.randrange(len(shelves))]
            since = aware(today - timedelta(days=rng.randrange(0, min(30, product.room_temp_allowance_days - 1) + 1)), 11)
            vrow.update(location_id=shelf["id"], room_temp_since=since,
                        beyond_use_date=min(plan.expiry, since.date() + timedelta(days=product.room_temp_allowance_days)))
            sink.history(Vial, {k: v for k, v in vrow.items() if not k.startswith("_")}, kind="~", when=since,
                         reason=f"moved from {fridge['code']} to {shelf['code']}", user_id=tech)
        if plan.recall_id is not None and vrow["status"] == "in_stock":
            vrow["status"] = "quarantined"
        sink.add(Vial, **{k: v for k, v in vrow.items() if not k.startswith("_")})
        counters["shelf_vials"] += 1

    # Lots, now that we know which ones received vials, with the recalls that name them.
    for plan in [p for plans in catalog.lots.values() for p in plans] + [big]:
        lrow = dict(id=plan.pk, product_id=plan.product_id, lot_number=plan.lot_number, expiry_date=plan.expiry,
                    status="released", created_at=aware(plan.created, 7))
        sink.history(Lot, lrow, kind="+", when=lrow["created_at"],
                     reason=f"lot created on receipt of {product_by_id[plan.product_id].brand} lot {plan.lot_number}",
                     user_id=techs[0])
        if plan.recall_id is not None:
            lrow["status"] = "recalled"
        sink.add(Lot, **lrow)
    for n, (recall_id, plan, recall_date) in enumerate(recalls, start=1):
        recorded = aware(recall_date, 10)
        coordinator = users["recall_coordinator"][0]
        reference = f"BENCH-RECALL-{n}"
        rrow = dict(id=recall_id, reference=reference, source="manufacturer" if n > 1 else "regulator",
                    recall_class="II", reason="Bench recall: thromboembolic events reported", recall_date=recall_date,
                    status="open", created_by_id=coordinator, created_at=recorded, unmatched_lot_numbers=[])
        sink.add(Recall, **rrow)
        sink.history(Recall, rrow, kind="+", when=recorded, reason=f"recall {reference} recorded", user_id=coordinator)
        link = dict(recall_id=recall_id, lot_id=plan.pk)
        link["id"] = sink.add(RecallLot, **link)
        sink.history(RecallLot, link, kind="+", when=recorded, reason=f"recall {reference}", user_id=coordinator)
        sink.history(Lot, dict(id=plan.pk, product_id=plan.product_id, lot_number=plan.lot_number,
                               expiry_date=plan.expiry, status="recalled", created_at=aware(plan.created, 7)),
                     kind="~", when=recorded, reason=f"recalled ({reference})", user_id=coordinator)
        for k, (patient_id, vial_ids) in enumerate(sorted(notify[recall_id].items())):
            contacted = k % 3 == 0
            trow = dict(recall_id=recall_id, patient_id=patient_id, status="contacted" if contacted else "pending",
                        note="called the patient" if contacted else "",
                        updated_by_id=coordinator if contacted else None,
                        updated_at=recorded + timedelta(days=1) if contacted else None)
            trow["id"] = sink.add(NotificationTask, **trow)
            sink.history(NotificationTask, trow, kind="+", when=recorded, reason=f"recall {reference}",
                         user_id=coordinator)
            for vial_id in vial_ids:
                sink.add(NotificationTask.vials.through, notificationtask_id=trow["id"], vial_id=vial_id)
            counters["notifications"] += 1

    sink.flush()
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [
            Lot, StorageLocation, Vial, Patient, InfusionSession, Dispense, BrandSwitchFlag, AdverseReaction, Recall,
            RecallLot, NotificationTask, NotificationTask.vials.through,
            *[m.history.model for m in (Lot, StorageLocation, Vial, Patient, InfusionSession, Dispense, BrandSwitchFlag,
                                        AdverseReaction, Recall, RecallLot, NotificationTask)],
        ]):
            cursor.execute(sql)
    _authorise_todays_sessions(today=today, actor=User.objects.get(pk=pharms[0]))
    loaded = time.monotonic() - started
    out(f"rows written in {loaded:.1f} s; analysing")
    analyse(connection)
    history_rows = sum(n for label, n in sink.counts.items() if ".Historical" in label)
    return {
        "vials": sink.counts["inventory.Vial"],
        "patients": sink.counts["traceability.Patient"],
        "sessions": sink.counts["traceability.InfusionSession"],
        "dispenses": sink.counts["traceability.Dispense"],
        "lots": sink.counts["inventory.Lot"],
        "flags": sink.counts["traceability.BrandSwitchFlag"],
        "reactions": sink.counts["traceability.AdverseReaction"],
        "recalls": len(recalls),
        "notifications": counters["notifications"],
        "big_lot_dispensed": big_given,
        "history_rows": history_rows,
        "load_seconds": round(loaded, 1),
        "seconds": round(time.monotonic() - started, 1),
    }


def analyse(connection) -> None:
    """Fresh planner statistics (and PostgreSQL's visibility map, for index-only scans)."""
    if connection.vendor == "postgresql":
        previous = connection.get_autocommit()
        connection.set_autocommit(True)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        connection.set_autocommit(previous)
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def prepare_connection(connection) -> None:
    """Bulk-load settings for this connection only: no per-row foreign-key triggers (every row's
    parent is written by the same run), and on SQLite no fsync per batch."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Needs a superuser; the rows reference only rows this run writes.
            cursor.execute("SET session_replication_role = replica")
        else:
            cursor.execute("PRAGMA foreign_keys = OFF")
            cursor.execute("PRAGMA synchronous = OFF")
            cursor.execute("PRAGMA journal_mode = WAL")


def _authorise_todays_sessions(*, today: date, actor) -> None:
    """Today's open sessions (the dispense benchmark's) each under a current authorisation of the
    patient's, as every dispense must be: written through the audited bulk helpers, a few hundred
    rows at most."""
    from core.history import audited_bulk_create, audited_bulk_update
    from traceability.models import InfusionSession, TreatmentAuthorisation

    sessions = list(InfusionSession.objects.filter(scheduled_date=today, status="scheduled").order_by("pk"))
    authorisations = audited_bulk_create(TreatmentAuthorisation, [
        TreatmentAuthorisation(
            patient_id=s.patient_id, indication=s.indication, route=s.route, dose_grams=Decimal("60"),
            interval_days=21, doses=13, valid_from=today - timedelta(days=180), valid_until=today + timedelta(days=185),
            prescriber="Dr Bench", approver="Bench panel", payer_reference=f"BENCH-{s.patient_id}", created_by=actor,
        ) for s in sessions
    ], actor=actor, reason="treatment authorisation recorded")
    for session, authorisation in zip(sessions, authorisations):
        session.authorisation = authorisation
    audited_bulk_update(InfusionSession, sessions, ["authorisation"], actor=actor, reason="given under authorisation")
