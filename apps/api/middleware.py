"""Under ``/api/``, a URL that matches no route answers the API's JSON error shape
(``{"code": "not_found", "message", "fields"}``, docs/api.md#errors), not Django's HTML page."""

from __future__ import annotations

import orjson
from django.http import HttpResponse
from rest_framework.exceptions import NotFound

from apps.api.language import API_PREFIX


class ApiNotFoundMiddleware:
    """After ``ApiLanguageMiddleware``, so the message is in the response's language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 404
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            body = {"code": "not_found", "message": str(NotFound.default_detail), "fields": {}}
            return HttpResponse(orjson.dumps(body), status=404, content_type="application/json")
        return response
