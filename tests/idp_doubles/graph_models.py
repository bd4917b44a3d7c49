"""Strict checks of Microsoft Graph bodies against the Microsoft Graph SDK's own model classes (msgraph-sdk).

The SDK's JSON parse node (kiota_serialization_json) is lenient: an unknown field goes into the
model's ``additional_data``, a value of the wrong type becomes None, an unknown enum value becomes
None. ``StrictParseNode`` is that parse node with every one of those recorded as a problem; after
the parse, whatever is left in any ``additional_data`` of the model tree is a problem too. The
fields each exchange cannot do without are listed in ``REQUIRED`` (the SDK's models carry no
required flag).

Not a test file; tests and the Entra double load it by path. Needs msgraph-sdk.
"""

from __future__ import annotations

import enum
import json
import typing as t
import uuid

from kiota_abstractions.date_utils import datetime_from_iso_format_compat, parse_timedelta_string
from kiota_serialization_json.json_parse_node import JsonParseNode
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.synchronization_job import SynchronizationJob
from msgraph.generated.models.synchronization_job_collection_response import SynchronizationJobCollectionResponse
from msgraph.generated.models.synchronization_secret_key_string_value_pair import SynchronizationSecretKeyStringValuePair
from msgraph.generated.service_principals.item.synchronization.jobs.item.validate_credentials.validate_credentials_post_request_body import (
    ValidateCredentialsPostRequestBody,
)
from msgraph.generated.service_principals.item.synchronization.secrets.secrets_put_request_body import SecretsPutRequestBody

# OData protocol annotations Graph adds to a response that no SDK model holds (the SDK reads them from the
# response, not into the model): allowed at the top level of a response only.
RESPONSE_ANNOTATIONS = ("@odata.context",)

# JSON field names each model must carry in these exchanges (model class name -> fields).
REQUIRED: dict[str, tuple[str, ...]] = {
    "SecretsPutRequestBody": ("value",),
    "SynchronizationSecretKeyStringValuePair": ("key", "value"),
    "ValidateCredentialsPostRequestBody": ("useSavedCredentials",),
    "SynchronizationJobCollectionResponse": ("value",),
    "SynchronizationJob": ("id", "templateId", "schedule", "status"),
    "SynchronizationSchedule": ("state", "interval"),
    "SynchronizationStatus": ("code", "countSuccessiveCompleteFailures"),
    "SynchronizationQuarantine": ("currentBegan", "reason", "seriesBegan", "seriesCount"),
    "ODataError": ("error",),
    "MainError": ("code", "message"),
}

# The exchanges of the Entra backend: what each request and answer body is.
MODELS: dict[str, type] = {
    "secrets_put": SecretsPutRequestBody,
    "validate_credentials": ValidateCredentialsPostRequestBody,
    "jobs": SynchronizationJobCollectionResponse,
    "job": SynchronizationJob,
    "secret_pair": SynchronizationSecretKeyStringValuePair,
    "error": ODataError,
}


class ModelMismatch(AssertionError):
    """A body the vendor's model does not describe; ``problems`` lists each (path: what)."""

    def __init__(self, model: str, problems: list[str]):
        super().__init__("%s: %s" % (model, "; ".join(problems)))
        self.problems = problems


class StrictParseNode(JsonParseNode):
    """kiota's JsonParseNode that records, instead of silently dropping, what the model does not describe."""

    def __init__(self, node: t.Any, path: str, problems: list[str]):
        super().__init__(node)
        self.path = path
        self.problems = problems

    def _problem(self, what: str) -> None:
        self.problems.append("%s: %s" % (self.path or "(body)", what))

    def _typed(self, expected: str, ok: bool) -> None:
        if self._json_node is not None and not ok:
            self._problem("%s expected, got %s" % (expected, type(self._json_node).__name__))

    def get_str_value(self):
        self._typed("string", isinstance(self._json_node, str))
        return super().get_str_value()

    def get_bool_value(self):
        self._typed("boolean", isinstance(self._json_node, bool))
        return super().get_bool_value()

    def get_int_value(self):
        self._typed("integer", isinstance(self._json_node, int) and not isinstance(self._json_node, bool))
        return super().get_int_value()

    def get_float_value(self):
        self._typed("number", isinstance(self._json_node, (int, float)) and not isinstance(self._json_node, bool))
        return super().get_float_value()

    def get_uuid_value(self):
        return self._parsed("GUID", uuid.UUID)

    def get_datetime_value(self):
        return self._parsed("date-time", datetime_from_iso_format_compat)

    def get_timedelta_value(self):
        return self._parsed("duration", parse_timedelta_string)

    def _parsed(self, expected: str, parse: t.Callable[[str], t.Any]) -> t.Any:
        if self._json_node is None:
            return None
        if not isinstance(self._json_node, str):
            self._problem("%s expected, got %s" % (expected, type(self._json_node).__name__))
            return None
        try:
            return parse(self._json_node)
        except (ValueError, TypeError):
            self._problem("%s expected, got %r" % (expected, self._json_node))
            return None

    def get_enum_value(self, enum_class):
        if self._json_node is None:
            return None
        members = {member.value for member in enum_class}
        if not isinstance(self._json_node, str) or self._json_node not in members:
            self._problem("one of %s expected, got %r" % (enum_class.__name__, self._json_node))
            return None
        return super().get_enum_value(enum_class)

    def get_collection_of_enum_values(self, enum_class):
        self._typed("array", isinstance(self._json_node, list))
        if not isinstance(self._json_node, list):
            return []
        return [self._child(item, "[%d]" % i).get_enum_value(enum_class) for i, item in enumerate(self._json_node)]

    def get_collection_of_primitive_values(self, primitive_type):
        self._typed("array", isinstance(self._json_node, list))
        return super().get_collection_of_primitive_values(primitive_type) if isinstance(self._json_node, list) else []

    def get_collection_of_object_values(self, factory):
        self._typed("array", isinstance(self._json_node, list))
        if not isinstance(self._json_node, list):
            return []
        return [self._child(item, "[%d]" % i).get_object_value(factory) for i, item in enumerate(self._json_node)]

    def get_object_value(self, factory):
        self._typed("object", isinstance(self._json_node, dict))
        return super().get_object_value(factory)

    def _child(self, node: t.Any, step: str) -> StrictParseNode:
        return StrictParseNode(node, self.path + step, self.problems)

    def _assign_field_values(self, item) -> None:
        """kiota's loop (known fields to their deserializers, the rest to additional_data), with paths and the required fields."""
        if not isinstance(self._json_node, dict):
            return
        deserializers = item.get_field_deserializers()
        for name in REQUIRED.get(type(item).__name__, ()):
            if self._json_node.get(name) is None:
                self._problem("required field %s missing" % name)
        for name, value in self._json_node.items():
            if name in deserializers:
                if value is not None:
                    deserializers[name](self._child(value, ".%s" % name))
            elif getattr(item, "additional_data", None) is not None:
                item.additional_data[name] = self.try_get_anything(value)
            else:
                self._problem("field %s unknown to %s (the model keeps no additional data)" % (name, type(item).__name__))


def _left_over(model: t.Any, path: str, problems: list[str], top: bool) -> None:
    """Every field that ended in an additional_data anywhere in the model tree."""
    extra = dict(getattr(model, "additional_data", None) or {})
    if top:
        for name in RESPONSE_ANNOTATIONS:
            extra.pop(name, None)
    for name in extra:
        problems.append("%s: field %s unknown to %s" % (path or "(body)", name, type(model).__name__))
    for field in getattr(model, "__dataclass_fields__", {}):
        if field in ("additional_data", "backing_store"):
            continue
        value = getattr(model, field, None)
        children = value if isinstance(value, list) else [value]
        for index, child in enumerate(children):
            if hasattr(child, "get_field_deserializers") and not isinstance(child, enum.Enum):
                _left_over(child, "%s.%s%s" % (path, field, "[%d]" % index if isinstance(value, list) else ""), problems, False)


def check(model: type | str, body: t.Any, response: bool = False) -> t.Any:
    """The body parsed into ``model`` (a class of msgraph-sdk, or a key of ``MODELS``); raises ModelMismatch
    on an unknown field, a missing required field or a value of the wrong type. ``response``: top-level
    OData annotations such as @odata.context are allowed."""
    model_class = MODELS[model] if isinstance(model, str) else model
    raw = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode("utf-8")
    stock = JsonParseNodeFactory().get_root_parse_node("application/json", raw)
    problems: list[str] = []
    if not isinstance(stock._json_node, dict):  # pylint: disable=protected-access
        raise ModelMismatch(model_class.__name__, ["(body): object expected"])
    node = StrictParseNode(stock._json_node, "", problems)  # pylint: disable=protected-access
    parsed = node.get_object_value(model_class)
    _left_over(parsed, "", problems, response)
    if problems:
        raise ModelMismatch(model_class.__name__, problems)
    return parsed
