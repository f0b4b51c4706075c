"""Vial and location labels: GS1 barcode parsing (gs1) and label rendering (render)."""
