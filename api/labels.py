"""Printable labels: a vial's GS1 DataMatrix + GS1-128, a shelf's Code 128, or a PDF sheet of many."""

from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.settings import APISettings
from rest_framework.views import APIView

from core.text import grams_text
from api.permissions import InventoryPermission
from api.serializers import IdField, validated
from inventory.models import StorageLocation
from inventory.selectors import vial_by_id, vial_queryset
from labels.render import LabelData, render_label_sheet, render_location_label, render_vial_label

FORMATS = ["png", "svg", "zpl", "pdf"]


def vial_label_data(vial) -> LabelData:
    """The manufacturer's (01)(17)(10), and (21) only when the carton had a serial: a label that
    put our own id in (21) would read as a DSCSA product identifier the manufacturer never
    issued. Unserialised stock carries its internal id in the company-internal (91) instead.
    (17) stays the manufacturer's expiry; an earlier beyond-use date is printed as such."""
    presentation, lot = vial.presentation, vial.lot
    grams = grams_text(presentation.grams)
    lines = [
        f"{presentation.product.brand} {grams} g",
        f"Lot {lot.lot_number}  Exp {lot.expiry_date:%Y-%m-%d}",
    ]
    if vial.beyond_use_date < lot.expiry_date:
        lines.append(f"Use by {vial.beyond_use_date:%Y-%m-%d} (beyond-use date)")
    lines.append(f"Internal ID {vial.serial} (91)" if vial.serial_is_internal else f"SN {vial.serial}")
    return LabelData(
        gtin=presentation.gtin,
        expiry=lot.expiry_date,
        expiry_day_00=lot.expiry_day_00,
        lot=lot.lot_number,
        serial=None if vial.serial_is_internal else vial.serial,
        internal_serial=vial.serial if vial.serial_is_internal else None,
        lines=tuple(lines),
    )


class FormatIn(serializers.Serializer):
    format = serializers.ChoiceField(choices=FORMATS, default="png")


def _file(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class LabelNegotiation(DefaultContentNegotiation):
    """`?format=` names the label's file type here. DRF would read it as a renderer override and
    answer 404 for every label format (no renderer is called "png"). A label is a file whatever
    Accept says (`Accept: image/png` must not be a 406); renderers only shape refusals, in JSON."""

    settings = APISettings({"URL_FORMAT_OVERRIDE": None})

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except exceptions.NotAcceptable:
            return renderers[0], renderers[0].media_type


FORMAT_PARAM = OpenApiParameter("format", str, enum=FORMATS, description="png (default), svg, zpl or pdf")


class VialLabel(APIView):
    """A vial label. Every vial has a serial, the manufacturer's in (21) or, for unserialised
    stock, an internal one in (91), so every label scans back to one vial."""

    permission_classes = [InventoryPermission]
    content_negotiation_class = LabelNegotiation

    @extend_schema(parameters=[FORMAT_PARAM], responses={(200, "*/*"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        fmt = validated(FormatIn, request.query_params)["format"]
        vial = vial_by_id(pk)
        content, content_type = render_vial_label(vial_label_data(vial), fmt)
        return _file(content, content_type, f"vial-{vial.pk}.{fmt}")


class LocationLabel(APIView):
    """A shelf label carrying the location's scannable code."""

    permission_classes = [InventoryPermission]
    content_negotiation_class = LabelNegotiation

    @extend_schema(parameters=[FORMAT_PARAM], responses={(200, "*/*"): OpenApiTypes.BINARY})
    def get(self, request, pk: int):
        fmt = validated(FormatIn, request.query_params)["format"]
        location = get_object_or_404(StorageLocation, pk=pk)
        content, content_type = render_location_label(code=location.code, name=location.name, fmt=fmt)
        return _file(content, content_type, f"location-{location.code}.{fmt}")


class SheetIn(serializers.Serializer):
    vials = serializers.ListField(child=IdField(), allow_empty=False, max_length=500)


class VialLabelSheet(APIView):
    """A PDF sheet of labels for many vials (e.g. a whole receipt of unserialised stock)."""

    permission_classes = [InventoryPermission]

    @extend_schema(request=SheetIn, responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    def post(self, request):
        ids = validated(SheetIn, request.data)["vials"]
        vials = {v.pk: v for v in vial_queryset().filter(pk__in=ids)}
        missing = [i for i in ids if i not in vials]
        if missing:
            from inventory.exceptions import UnknownVial

            raise UnknownVial(f"No vial has id {missing[0]}.", extra={"missing": missing})
        pdf = render_label_sheet([vial_label_data(vials[i]) for i in ids])
        return _file(pdf, "application/pdf", "vial-labels.pdf")


urlpatterns = [
    path("vials/<int:pk>/label", VialLabel.as_view(), name="vial-label"),
    path("locations/<int:pk>/label", LocationLabel.as_view(), name="location-label"),
    path("labels/sheet", VialLabelSheet.as_view(), name="label-sheet"),
]
