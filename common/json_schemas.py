"""JSON Schemas a tenant writes (its HTTP tools' parameters), checked and applied safely.

A schema is tenant input that the platform runs: once when it is saved, and on every
tool call, on the event loop that carries every call's audio. So:

- it is at most ``MAX_SCHEMA_BYTES`` of JSON, nested at most ``MAX_DEPTH`` deep (one 600
  levels deep overflowed the validator's recursion: a 500);
- its ``pattern`` and ``patternProperties`` are run by RE2, whose time is linear in the
  input, never by Python's backtracking ``re`` (``"^(a+)+$"`` against ``aaaa…!`` blocked
  the event loop for 9.3 s). A pattern RE2 cannot run (backreferences, lookaround) is
  refused when the schema is saved, with why;
- arguments are checked no deeper than ``MAX_DEPTH`` either.

jsonschema never fetches a remote ``$ref`` (it retrieves nothing unless told to).
"""

import json
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, SchemaError, ValidationError, validators

MAX_SCHEMA_BYTES = 8 * 1024
MAX_DEPTH = 32

_RE2 = re2.Options()
_RE2.log_errors = False  # a tenant's bad pattern is its 422, not a line on our stderr


class BadSchema(ValueError):
    """Why a tenant's schema cannot be used."""


def depth(value: Any) -> int:
    """How deeply ``value`` nests objects and arrays (iteratively: any depth is safe)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _compiled(pattern: str):
    try:
        return re2.compile(pattern, _RE2)
    except re2.error as bad:
        raise BadSchema(
            f"pattern {pattern[:60]!r} cannot be used (patterns run on RE2: no "
            f"backreferences or lookaround): {bad.args[0]!r}"
        ) from None


def _pattern(validator, pattern: str, instance: Any, schema: dict) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _compiled(pattern).search(instance):
        yield ValidationError(f"{instance[:60]!r} does not match {pattern[:60]!r}")


def _pattern_properties(
    validator, patterns: dict, instance: Any, schema: dict
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        matcher = _compiled(pattern)
        for name, value in instance.items():
            if matcher.search(name):
                yield from validator.descend(value, subschema, path=name, schema_path=pattern)


TenantSchemaValidator = validators.extend(
    Draft202012Validator, {"pattern": _pattern, "patternProperties": _pattern_properties}
)


def _patterns(schema: Any) -> Iterator[str]:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                yield node["pattern"]
            if isinstance(node.get("patternProperties"), dict):
                yield from node["patternProperties"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def check_schema(schema: dict[str, Any]) -> None:
    """Raise BadSchema unless ``schema`` is a JSON Schema the platform will run."""
    if depth(schema) > MAX_DEPTH:
        raise BadSchema(f"nested more than {MAX_DEPTH} levels deep")
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise BadSchema(f"at most {MAX_SCHEMA_BYTES} bytes of JSON Schema")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as bad:
        raise BadSchema(f"not a valid JSON Schema: {bad.message}") from None
    for pattern in _patterns(schema):
        _compiled(pattern)


def first_problem(schema: dict[str, Any], instance: Any) -> str | None:
    """Why ``instance`` does not match ``schema`` (a checked one), or None if it does."""
    if depth(instance) > MAX_DEPTH:
        return f"nested more than {MAX_DEPTH} levels deep"
    try:
        problem = next(iter(TenantSchemaValidator(schema).iter_errors(instance)), None)
    except BadSchema as bad:  # saved before patterns were checked on RE2
        return str(bad)
    return problem.message if problem is not None else None
