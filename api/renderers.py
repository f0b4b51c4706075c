"""The API's JSON: written by orjson (drf-orjson-renderer), compact UTF-8 as DRF's own renderer
writes it, with the media type `application/json`."""

from drf_orjson_renderer.renderers import ORJSONRenderer


class JSONRenderer(ORJSONRenderer):
    """JSON for every API response; a large one (a recall's lookback) is encoded in C."""
