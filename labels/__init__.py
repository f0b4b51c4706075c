"""Barcodes in and out, with no domain words: GS1 parsing of what scanners send (`gs1`, with biip)
and label rendering (`render`: GS1-128, GS1 DataMatrix, ZPL, PNG/SVG/PDF).

May import: core. Nothing above it.
"""
