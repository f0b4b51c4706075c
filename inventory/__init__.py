"""Stock: the catalog (manufacturers, products, GTIN presentations), lots, storage locations and
vials; receiving, moving, quarantine and release, waste and return (`services`); the reads for
lists, scans and reports (`selectors`); the stock-status verdict written once (`rules`).

May import: core, labels. Never traceability, recalls, audit, api or web.
"""
