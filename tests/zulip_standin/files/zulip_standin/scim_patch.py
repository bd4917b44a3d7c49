"""django-scim2's PATCH machinery, as Zulip's adapters use it (stdlib only).

What a PATCH goes through on a real Zulip (django_scim/views.py PatchView and
adapters.py SCIMMixin.handle_operations, the same in django-scim2 0.17.3 on
5.6 and 0.19.1 on 9.2), in this order:

  no "Operations" (missing, empty)       400 "PATCH call made without operations array"
  per operation, first its paths:
    no "path" and a value that is not an object
                                         ValueError -> the generic SCIM 500
    no "path" and an object value        one (path, value) pair per key
    a path the SCIM filter lexer cannot read
                                         parser error -> the generic SCIM 500
  then per (path, value):
    "op" not add/remove/replace (any case)
                                         400 'Unknown PATCH op "<op>"'
    a simple path "active" with a value that is not a JSON boolean
                                         400 '"<path as sent>" should be of type "bool". Got type "<python type>"'
                                         (no "path" key at all: KeyError -> the generic SCIM 500)
    the adapter's handle_add / handle_remove / handle_replace
                                         (the base adapter's add and remove: 501, empty detail)

The view wraps all operations in one transaction: a failing operation undoes
the earlier ones. The stand-in gets the same by applying nothing until every
operation has passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

VALID_PATCH_OPS = ("add", "remove", "replace")
# scim2_filter_parser's lexer: ATTRNAME = [a-zA-Z$][a-zA-Z0-9_$-]*, an optional schema URI in front,
# an optional value filter in brackets and an optional sub-attribute.
_NAME = r"[A-Za-z$][A-Za-z0-9_$-]*"
_PATH_RE = re.compile(rf"^(?:(?P<uri>urn:[^\[\]\s]+):)?(?P<attr>{_NAME})(?:\[(?P<filter>[^\]]+)\])?"
                      rf"(?:\.(?P<sub>{_NAME}))?$")


class PatchError(Exception):
    """A SCIM error answer: status, detail, scimType (django_scim.exceptions)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


class PatchCrash(Exception):
    """What raises a non-SCIM exception on a real Zulip: django-scim2 answers its generic 500."""


@dataclass(frozen=True)
class AttrPath:
    """scim2_filter_parser.attr_paths.AttrPath for the paths IdPs send."""

    text: str  # the path as sent
    attr: str
    sub: str | None
    uri: str | None
    value_filter: str | None  # 'value eq "5"' in members[value eq "5"]

    @property
    def first_path(self) -> tuple[str, str | None, str | None]:
        """(attribute, sub-attribute, schema URI), names as sent (Zulip compares them case-sensitively)."""
        if self.value_filter is not None:
            return (self.attr, None, self.uri)
        return (self.attr, self.sub, self.uri)

    @property
    def is_complex(self) -> bool:
        return self.value_filter is not None


def split_path(text: str) -> AttrPath:
    match = _PATH_RE.match(text)
    if match is None:
        raise PatchCrash(f"SCIMParserError: cannot parse path {text!r}")
    return AttrPath(text, match.group("attr"), match.group("sub"), match.group("uri"), match.group("filter"))


def paths_and_values(operation: dict[str, Any]) -> list[tuple[AttrPath, Any]]:
    """SCIMMixin.parse_path_and_values()."""
    path, value = operation.get("path"), operation.get("value")
    if not path:
        if not isinstance(value, dict):
            raise PatchCrash("ValueError: No path and operation value is a non-dict. Can not determine attribute.")
        return [(split_path(str(key)), item) for key, item in value.items()]
    if not isinstance(path, str):
        raise PatchCrash(f"TypeError: path is a {type(path).__name__}")
    return [(split_path(path), value)]


def python_type_name(value: Any) -> str:
    """type(value).__name__ of a value json.loads() made."""
    return {type(None): "NoneType", bool: "bool", int: "int", float: "float", str: "str", list: "list",
            dict: "dict"}[type(value)]


def validate(path: AttrPath, value: Any, operation: dict[str, Any]) -> None:
    """SCIMMixin._default_validate_op(): only "active" has a checked type."""
    if path.is_complex or path.first_path != ("active", None, None) or isinstance(value, bool):
        return
    if "path" not in operation:
        raise PatchCrash("KeyError: 'path'")  # the message reads operation['path']
    raise PatchError(400, f'"{operation["path"]}" should be of type "bool". Got type "{python_type_name(value)}"')


Handler = Callable[[AttrPath, Any, dict[str, Any]], None]


def operations_of(body: Any) -> list[Any]:
    operations = body.get("Operations") if isinstance(body, dict) else None
    if not isinstance(body, dict):
        raise PatchCrash("AttributeError: the body is not an object")
    if not operations:
        raise PatchError(400, "PATCH call made without operations array")
    if not isinstance(operations, list):
        raise PatchCrash("AttributeError: Operations is not a list of objects")
    return operations


def handle_operations(body: Any, handlers: dict[str, Handler]) -> None:
    """PatchView.patch() + SCIMMixin.handle_operations(): every handler call, in order."""
    for operation in operations_of(body):
        if not isinstance(operation, dict):
            raise PatchCrash("AttributeError: an operation is not an object")
        for path, value in paths_and_values(operation):
            op = operation.get("op")
            if not isinstance(op, str):
                raise PatchCrash("AttributeError: op is not a string")
            op = op.lower()
            if op not in VALID_PATCH_OPS:
                raise PatchError(400, f'Unknown PATCH op "{op}"')
            validate(path, value, operation)
            handlers[op](path, value, operation)


def not_implemented(path: AttrPath, value: Any, operation: dict[str, Any]) -> None:
    """The base adapter's handle_add / handle_remove: NotImplementedError() with no detail."""
    raise PatchError(501, "")
