"""Pages: `page` and `page_size` (1 to 500). A page size that is not a whole number in range is
refused, rather than quietly replaced by the default as DRF would."""

from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination

MAX_PAGE_SIZE = 500


class PageSizeIn(serializers.Serializer):
    page_size = serializers.IntegerField(min_value=1, max_value=MAX_PAGE_SIZE, required=False)


def checked_page_size(request, param: str, default: int) -> int:
    """The page size the request asks for, checked; `default` when it asks for none."""
    if param not in request.query_params:
        return default
    values = request.query_params.getlist(param)
    serializer = PageSizeIn(data={"page_size": values[-1]})
    if len(values) > 1:
        raise serializers.ValidationError({param: ["Give page_size once."]})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["page_size"]


class PageSizeSchema:
    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": MAX_PAGE_SIZE})
        return parameters


class Pagination(PageSizeSchema, PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        return checked_page_size(request, self.page_size_query_param, self.page_size)
