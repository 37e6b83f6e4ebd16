"""Filter backends shared by every API version."""

from __future__ import annotations

from django.utils.translation import gettext
from rest_framework import filters
from rest_framework.exceptions import ValidationError


class SearchFilter(filters.SearchFilter):
    """DRF's search, refusing terms PostgreSQL cannot compare (NUL characters) with a 400."""

    def get_search_terms(self, request):
        value = request.query_params.get(self.search_param, "")
        if "\x00" in value:
            raise ValidationError({self.search_param: [gettext("Null characters are not allowed.")]})
        return super().get_search_terms(request)
