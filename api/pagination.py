"""Pages: `page` and `page_size` (1 to 500). A page size that is not a whole number in range is
refused, rather than quietly replaced by the default as DRF would.

A page's `count` is exact up to `COUNT_CAP` results. Past it, counting every row of a table of a
million vials would cost more than the page itself, so the count stops there: `count_exact` is
false and `count` is a lower bound (there are more than `count` results). Navigation does not
depend on the count: a page past the cap is read with one row more than it shows, which tells
whether there is a next one, and the last page, once reached, states the exact count. Asking for
`page=last` counts every row, exactly, as that is what it needs.
"""

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

MAX_PAGE_SIZE = 500
COUNT_CAP = 10_000
COUNT_HELP = f"How many results there are; past {COUNT_CAP:,}, a lower bound (see `count_exact`)."
COUNT_EXACT_HELP = (
    f"False when counting stopped at {COUNT_CAP:,}: there are more than `count` results. `next` leads on "
    "past them; the last page states the exact count, and `page=last` counts them all.")


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


class CappedPage(Page):
    """A page past a capped count: whether a next page exists was read, not worked out."""

    def __init__(self, object_list, number, paginator, more: bool):
        super().__init__(object_list, number, paginator)
        self.more = more

    def has_next(self):
        return self.more

    def next_page_number(self):
        return self.number + 1

    def previous_page_number(self):
        return self.number - 1


class CappedPaginator(Paginator):
    """Django's paginator, counting a queryset at most up to `cap` rows (one query:
    `SELECT COUNT(*) FROM (… LIMIT cap + 1)`); `count_exact` says whether the count stopped there."""

    def __init__(self, object_list, per_page, cap: int = COUNT_CAP, ids_first: bool = False, rows_by_ids=None):
        super().__init__(object_list, per_page)
        self.cap = cap
        self.ids_first = ids_first
        self.rows_by_ids = rows_by_ids
        self.count_exact = True

    @cached_property
    def count(self):
        if not isinstance(self.object_list, QuerySet):
            return len(self.object_list)
        counted = self.object_list.order_by()[: self.cap + 1].count()
        if counted > self.cap:
            self.count_exact = False
            return self.cap
        return counted

    def count_all(self) -> None:
        """Count every row (`page=last` needs the end)."""
        self.count  # noqa: B018 -- sets count_exact
        if not self.count_exact:
            self.__dict__.pop("num_pages", None)
            self.count = self.object_list.count()
            self.count_exact = True

    def validate_number(self, number):
        self.count  # noqa: B018 -- sets count_exact
        if self.count_exact:
            return super().validate_number(number)
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger(self.error_messages["invalid_page"])
        if number < 1:
            raise EmptyPage(self.error_messages["min_page"])
        return number

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        if self.count_exact:
            return self._get_page(self.rows(bottom, min(bottom + self.per_page, self.count)), number, self)
        rows = self.rows(bottom, bottom + self.per_page + 1)
        if not rows and number > 1:
            raise EmptyPage(self.error_messages["no_results"])
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        self.__dict__.pop("num_pages", None)
        if more:
            self.count = max(self.cap, bottom + len(rows))
        else:  # the last page: now the count is known
            self.count, self.count_exact = bottom + len(rows), True
        return CappedPage(rows, number, self, more)

    def rows(self, bottom: int, top: int) -> list:
        if bottom >= top:
            return []
        if not (self.ids_first and isinstance(self.object_list, QuerySet)):
            return list(self.object_list[bottom:top])
        # The page's keys from the list's order and filters alone, then its rows with their joins by
        # key: the database plans a wide join over a page of rows, not over the whole table.
        ids = list(self.object_list.prefetch_related(None).values_list("pk", flat=True)[bottom:top])
        if self.rows_by_ids is not None:
            # The view's own read by key (a compiled query): the keys already passed the filters.
            by_pk = {row.pk: row for row in self.rows_by_ids(ids)}
        else:
            by_pk = self.object_list.order_by().in_bulk(ids)
        return [by_pk[pk] for pk in ids if pk in by_pk]


class Pagination(PageSizeSchema, PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    count_cap = COUNT_CAP
    ids_first = False

    rows_by_ids = None

    def django_paginator_class(self, object_list, per_page):
        return CappedPaginator(object_list, per_page, cap=self.count_cap, ids_first=self.ids_first,
                               rows_by_ids=self.rows_by_ids)

    def get_page_size(self, request):
        return checked_page_size(request, self.page_size_query_param, self.page_size)

    def get_page_number(self, request, paginator):
        page_number = request.query_params.get(self.page_query_param) or 1
        if page_number in self.last_page_strings:
            paginator.count_all()
            page_number = paginator.num_pages
        return page_number

    def get_paginated_response(self, data):
        return Response({
            "count": self.page.paginator.count,
            "count_exact": self.page.paginator.count_exact,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "results": data,
        })

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["required"] = ["count", "count_exact", "results"]
        properties = response["properties"]
        properties["count"]["description"] = COUNT_HELP
        properties["count_exact"] = {"type": "boolean", "description": COUNT_EXACT_HELP}
        response["properties"] = {key: properties[key] for key in ("count", "count_exact", "next", "previous",
                                                                  "results")}
        return response


class IdsFirstPagination(Pagination):
    """For lists whose rows join many tables: one query reads the page's keys (the list's filters
    and order, on its own index), a second the rows with their joins by key. PostgreSQL plans a
    join of a dozen tables over the first rows of a big table's order in tens of milliseconds; over
    fifty keys, in one or two.

    A view may set `rows_by_ids(ids)` on its paginator (the rows of these keys, in any order) to
    read the page's rows with it instead of the queryset's `in_bulk()`."""

    ids_first = True
