"""DRF's JSON parser, hardened: no body is bigger than Django allows elsewhere, JSON nested too
deep to parse is a 400 like any other malformed JSON, and no string in it may hold a character no
database can store (NUL, a lone surrogate): the one place every JSON input passes through."""

from django.conf import settings
from rest_framework import exceptions, parsers, status

from core.text import unstorable_character


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "request_too_large"


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        # DRF reads a JSON body straight from the socket, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE
        # (which only guards request.body and forms): apply the same ceiling here.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge()
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # `[[[[…]]]]` a few thousand deep exhausts the stack of json's decoder.
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
        refuse_unstorable(data)
        return data


def refuse_unstorable(data) -> None:
    """Walk parsed JSON (without recursion: depth is the client's choice) and refuse a string, key
    or value, that holds NUL or a lone surrogate."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            bad = unstorable_character(item)
            if bad is not None:
                raise exceptions.ParseError(f"The request holds the character {bad}, which cannot be stored.",
                                            code="invalid_characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
