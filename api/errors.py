"""One place where domain errors and DRF's own errors become `{"code": …, "detail": …}`."""

import logging

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    ValidationError as DjangoValidationError,
)
from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from api.parsers import RequestTooLarge
from core.errors import ApplicationError

API_PREFIX = "/api/"
UNREADABLE_SCAN = (
    "This is not a barcode we can read. Scan the carton's GS1 DataMatrix (or its GS1-128), "
    "a shelf label or a wristband; if it still fails, type the lot number or call the pharmacist."
)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        # `code` and `detail` are the contract: extra context never overrides them.
        body = {"code": exc.code, "detail": exc.message}
        if exc.code == "invalid_barcode":
            # The parser says what is wrong in its own terms; a person at the bench needs to
            # know what to do. The parser's words stay, as `technical`, for whoever fixes it.
            index = exc.extra.get("scan_index")
            plain = UNREADABLE_SCAN if index is None else f"Scan {index + 1}: {UNREADABLE_SCAN}"
            body = {"code": exc.code, "detail": plain, "technical": exc.message}
        body.update((key, value) for key, value in exc.extra.items() if key not in body)
        return Response(body, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        exc = _refused_request(exc)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": _first_message(exc.detail), "errors": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        code = detail.code if hasattr(detail, "code") else exc.default_code
        response.data = {"code": code, "detail": str(detail)}
    return response


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field in ("non_field_errors",) else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail) if detail else "Invalid input."


def _refused_request(exc: SuspiciousOperation) -> exceptions.APIException:
    """Django refuses some requests while reading them (too many parameters, too big a form);
    it would answer with its HTML 400 page. Logged where Django logs them, for whoever watches."""
    logging.getLogger(f"django.security.{exc.__class__.__name__}").error(str(exc))
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, TooManyFieldsSent):
        return exceptions.ParseError("The request has too many parameters.", code="too_many_fields")
    return exceptions.ParseError("The request was refused as malformed.", code="bad_request")


# Django's own error views, for what never reaches a DRF view (a URL that matches no route, such as
# /api/vials/abc/, or a crash). API clients get the same `{"code", "detail"}` as everywhere else;
# the web pages keep Django's HTML pages.


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"code": "bad_request", "detail": "The request was refused as malformed."}, status=400)
    return defaults.bad_request(request, exception, template_name)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"code": "not_found", "detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"code": "server_error", "detail": "Something went wrong on our side."}, status=500)
    return defaults.server_error(request, template_name)


def locked_out(request, original_response=None, credentials=None):
    """django-axes' answer once a username is locked out from an address (AXES_LOCKOUT_CALLABLE):
    the API's `{"code", "detail"}` with 429, or a plain page for the login form."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    detail = (
        f"Too many failed logins: this username is locked from this address for {minutes} minutes. "
        "Ask an administrator if you need access sooner."
    )
    if _is_api(request):
        return JsonResponse({"code": "locked_out", "detail": detail}, status=429)
    return HttpResponse(detail, status=429, content_type="text/plain; charset=utf-8")
