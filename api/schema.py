"""The OpenAPI schema's shared parts: the one error body every operation declares for each refusal
it can answer with, and the token authentication scheme.

Which refusals an operation declares follows from what it is, so that a new view needs nothing
here: 400 and 404 everywhere (a malformed parameter; an unknown id or page), 401 and 403 wherever a
login is needed, 409, 413 and 415 wherever a body is sent, 429 where a throttle applies.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from rest_framework import serializers
from rest_framework.permissions import AllowAny


class ErrorOut(serializers.Serializer):
    """Every refusal: a stable `code`, a human `detail`, sometimes more context (for instance
    `errors` per field for `invalid`, `suggestions` for an unknown lot)."""

    code = serializers.CharField(help_text="Stable snake_case code, e.g. invalid, not_found, lot_recalled")
    detail = serializers.CharField(help_text="What is wrong and what to do, in words")


REFUSALS = {
    400: "The request is invalid (the `code` says how)",
    401: "Not logged in, or the token is unknown, expired or revoked",
    403: "Your role may not do this",
    404: "No such record (or page)",
    409: "The current state forbids it",
    413: "The request body is too large",
    415: "The body is not JSON (or a form)",
    429: "Too many requests, or too many failed logins: wait and try again",
}
BODIES = ("POST", "PUT", "PATCH")


class Schema(AutoSchema):
    def _refusals(self) -> list[int]:
        codes = [400, 404]
        public = all(isinstance(permission, AllowAny) for permission in self.view.get_permissions())
        if not public or self.method == "DELETE":
            codes += [401, 403]
        if self.method in BODIES:
            codes += [409, 413, 415]
        if self.view.get_throttles():
            codes.append(429)
        return sorted(codes)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._refusals():
            if str(code) not in responses:
                responses[str(code)] = {
                    "content": {"application/json": {"schema": self.resolve_serializer(ErrorOut, "response").ref}},
                    "description": REFUSALS[code],
                }
        return responses


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")
