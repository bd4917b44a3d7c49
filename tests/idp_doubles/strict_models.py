"""Strict checks of JSON bodies against a vendor's generated pydantic models (openapi-generator).

The generated models (``authentik-client``, ``okta``) are lenient on purpose: ``from_dict`` drops
keys it does not know (or keeps them aside in ``additional_properties``), and a field that is
required but nullable passes when it is missing. The doubles must not be lenient, so this module
fails on:

- a key the model does not declare (unless the model itself declares ``additional_properties``,
  i.e. the vendor's schema allows extra keys there),
- a required key that is missing (required = pydantic ``is_required()``: no default in the model,
  which is how the generator writes the schema's ``required`` list),
- a wrong type or enum value (the model's own validation, run by its ``from_dict``),

at every level (nested models, lists and maps of models; ``oneOf`` wrappers must match exactly one
candidate strictly). Messages name the path and the problem, never the value (bodies hold tokens).
"""

from __future__ import annotations

import typing as t

import pydantic

EXTRA_FIELD = "additional_properties"


class ModelMismatch(AssertionError):
    """A body does not match the vendor's model."""


def check(model: type, data: t.Any, where: str = "body") -> t.Any:
    """The model instance of ``data``; ModelMismatch naming every problem when it is not strictly one."""
    problems = problems_of(model, data, where)
    if problems:
        raise ModelMismatch("%s does not match %s: %s" % (where, model.__name__, "; ".join(problems)))
    return model.from_dict(data) if not _is_one_of(model) else model.from_json(_json(data))


def problems_of(model: type, data: t.Any, path: str) -> list[str]:
    if _is_one_of(model):
        return _one_of_problems(model, data, path)
    if not isinstance(data, dict):
        return ["%s: expected an object, got %s" % (path, type(data).__name__)]
    fields = {(info.alias or name): (name, info) for name, info in model.model_fields.items() if name != EXTRA_FIELD}
    problems = []
    if EXTRA_FIELD not in model.model_fields:
        problems += ["%s.%s: unknown field" % (path, key) for key in sorted(set(data) - set(fields))]
    for key, (_name, info) in fields.items():
        if key not in data:
            if info.is_required():
                problems.append("%s.%s: required field missing" % (path, key))
            continue
        problems += _nested_problems(info.annotation, data[key], "%s.%s" % (path, key))
    if not problems:
        problems += _validation_problems(model, data, path)
    return problems


def _nested_problems(annotation: t.Any, value: t.Any, path: str) -> list[str]:
    """Recurse into the models inside ``annotation`` (Optional, List, Dict of models)."""
    if value is None:
        return []
    origin, args = t.get_origin(annotation), t.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return problems_of(annotation, value, path)
    if origin is t.Union:
        models = [a for a in args if isinstance(a, type) and issubclass(a, pydantic.BaseModel)]
        return problems_of(models[0], value, path) if len(models) == 1 else []
    if origin in (list, t.List) and args and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nested_problems(args[0], item, "%s[%d]" % (path, i))]
    if origin in (dict, t.Dict) and len(args) == 2 and isinstance(value, dict):
        return [p for k, item in value.items() for p in _nested_problems(args[1], item, "%s[%s]" % (path, k))]
    return []


def _validation_problems(model: type, data: dict, path: str) -> list[str]:
    try:
        model.from_dict(data)
    except pydantic.ValidationError as exc:
        return ["%s.%s: %s" % (path, ".".join(str(part) for part in error["loc"]), error["type"])
                for error in exc.errors(include_input=False, include_url=False)]
    except (TypeError, ValueError) as exc:
        return ["%s: %s" % (path, type(exc).__name__)]
    return []


def _is_one_of(model: type) -> bool:
    return "actual_instance" in getattr(model, "model_fields", {}) and hasattr(model, "from_json")


def _one_of_candidates(model: type) -> list[type]:
    annotation = model.model_fields["actual_instance"].annotation
    found: list[type] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, pydantic.BaseModel):
            found.append(item)
        else:
            stack.extend(t.get_args(item))
    return sorted(found, key=lambda c: c.__name__)


def _one_of_problems(model: type, data: t.Any, path: str) -> list[str]:
    candidates = _one_of_candidates(model)
    results = {c.__name__: problems_of(c, data, path) for c in candidates}
    matching = [name for name, problems in results.items() if not problems]
    if len(matching) == 1:
        return []
    if not matching:
        return ["%s: matches none of %s (%s)" % (path, ", ".join(results),
                                                 " | ".join("%s: %s" % (n, ", ".join(p)) for n, p in results.items()))]
    return ["%s: matches more than one of %s: %s" % (path, ", ".join(results), ", ".join(matching))]


def _json(data: t.Any) -> str:
    import json
    return json.dumps(data)
