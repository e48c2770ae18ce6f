"""The API's JSON parser: orjson, and nesting bounded by ``FLEETWATCH_MAX_JSON_DEPTH``
(``config.json_limits``), answered as a 400 naming the body and the limit."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from config.json_limits import JsonTooDeep, loads_bounded


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return loads_bounded(stream.read(), settings.FLEETWATCH_MAX_JSON_DEPTH)
        except JsonTooDeep as exc:
            raise ValidationError({"body": [str(exc)]}) from None  # config.errors words it "body: ..."
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
