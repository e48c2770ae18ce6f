"""The API's pagination: DRF's limit/offset with bounds (see docs/security.md).

Its own module: DRF reads DEFAULT_PAGINATION_CLASS while ``rest_framework.generics`` is
imported, so the class may not live in a module that imports the generic views.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination

from config.errors import ApiError


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit`` is capped at FLEETWATCH_API_MAX_PAGE_SIZE (larger values are clamped);
    ``?offset`` beyond FLEETWATCH_API_MAX_OFFSET answers 400 (page with filters instead)."""

    def __init__(self) -> None:
        self.max_limit = settings.FLEETWATCH_API_MAX_PAGE_SIZE  # one paginator per request: settings overrides apply

    def get_offset(self, request) -> int:
        offset = super().get_offset(request)
        if offset > settings.FLEETWATCH_API_MAX_OFFSET:
            raise ApiError(400, "invalid", f"offset: at most {settings.FLEETWATCH_API_MAX_OFFSET}; narrow the query with filters",
                           [{"field": "offset", "reason": f"greater than {settings.FLEETWATCH_API_MAX_OFFSET}"}])
        return offset

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_limit})
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update({"minimum": 0, "maximum": settings.FLEETWATCH_API_MAX_OFFSET})
        return parameters
