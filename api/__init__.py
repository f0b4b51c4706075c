"""HTTP for programs: DRF serializers, views, permissions (from core.roles), routes, the OpenAPI
schema and the one mapping of domain errors to HTTP. No rules: a view validates, calls one service
or selector, and renders.

May import: every app below it (core, labels, inventory, traceability, recalls, audit). Never web.
"""
