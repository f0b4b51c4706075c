"""What receiving tells the floors above it, without importing them.

Recalls live above inventory, yet a recall may name a lot the pharmacy does not hold yet; when that
lot arrives, receiving must know it is recalled. So receiving asks, and announces:

- `lot_number_held` is sent with `product` and `lot_number` before a new lot is created (and by
  the receipt check); each receiver returns why the lot must not be used (e.g. "recall
  FDA-2025-12"), or None.
- `lot_arrived` is sent with `lot` and `actor` once a new lot is created, inside the receipt's
  transaction, so a receiver can record what it knows of the lot (a recall links it).
"""

from django.dispatch import Signal

lot_number_held = Signal()
lot_arrived = Signal()


def holds_on(*, product, lot_number: str) -> list[str]:
    """Every reason a receiver gives for keeping this new lot out of use."""
    return [reason for _receiver, reason in lot_number_held.send(sender=None, product=product, lot_number=lot_number)
            if reason]
