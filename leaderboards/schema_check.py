"""A small JSON Schema checker for the subset the submission schema uses, reporting EVERY problem.

Supported keywords: ``type`` (one or a list), ``const``, ``enum``, ``required``, ``properties``,
``additionalProperties`` (false or a schema), ``minProperties``, ``items``, ``minLength``,
``maxLength``, ``pattern`` (``re.search``), ``minimum``, ``exclusiveMinimum``. A keyword outside
this subset in a schema is an error at load time, so the file cannot silently promise more than
is checked. Paths are JSON paths: ``$.protocol.eval_set.clips``, ``$.items[2]``.
"""

from __future__ import annotations

import re
from typing import Any

from t2mbench.core.errors import ConfigError

SUPPORTED = {
    "$schema", "$id", "title", "description", "type", "const", "enum", "required", "properties",
    "additionalProperties", "minProperties", "items", "minLength", "maxLength", "pattern", "minimum",
    "exclusiveMinimum",
}  # fmt: skip
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_schema(schema: Any, path: str = "#") -> None:
    """Raise ValueError if ``schema`` uses a keyword this checker does not implement."""
    if not isinstance(schema, dict):
        return
    unknown = sorted(set(schema) - SUPPORTED)
    if unknown:
        raise ValueError(f"schema {path}: unsupported keywords {', '.join(unknown)}")
    for name, sub in schema.get("properties", {}).items():
        check_schema(sub, f"{path}/properties/{name}")
    for key in ("additionalProperties", "items"):
        if isinstance(schema.get(key), dict):
            check_schema(schema[key], f"{path}/{key}")


def child(path: str, key: str | int) -> str:
    """The JSON path of ``key`` below ``path``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _NAME.match(key) else f"{path}[{key!r}]"


def _kind(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _TYPES[name](value):
            return name
    return type(value).__name__


def problems(instance: Any, schema: dict, path: str = "$") -> list[tuple[str, str]]:
    """Every ``(json_path, message)`` where ``instance`` breaks ``schema``, in document order."""
    out: list[tuple[str, str]] = []
    if "type" in schema:
        wanted = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in wanted):
            return [(path, f"expected {' or '.join(wanted)}, got {_kind(instance)}")]
    if "const" in schema and instance != schema["const"]:
        out.append((path, f"must be {schema['const']!r}, got {instance!r}"))
    if "enum" in schema and instance not in schema["enum"]:
        out.append((path, f"must be one of {', '.join(map(repr, schema['enum']))}, got {instance!r}"))
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            out.append((path, f"must have at least {schema['minLength']} characters"))
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            out.append((path, f"must have at most {schema['maxLength']} characters"))
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            out.append((path, f"{instance!r} does not match {schema['pattern']}"))
    if _TYPES["number"](instance):
        if "minimum" in schema and instance < schema["minimum"]:
            out.append((path, f"must be at least {schema['minimum']}, got {instance}"))
        if "exclusiveMinimum" in schema and instance <= schema["exclusiveMinimum"]:
            out.append((path, f"must be more than {schema['exclusiveMinimum']}, got {instance}"))
    if isinstance(instance, dict):
        for name in schema.get("required", []):
            if name not in instance:
                out.append((child(path, name), "required field is missing"))
        if len(instance) < schema.get("minProperties", 0):
            out.append((path, f"must have at least {schema['minProperties']} entries"))
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, value in instance.items():
            if name in props:
                out += problems(value, props[name], child(path, name))
            elif extra is False:
                out.append((child(path, name), "unknown field"))
            elif isinstance(extra, dict):
                out += problems(value, extra, child(path, name))
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for i, value in enumerate(instance):
            out += problems(value, schema["items"], child(path, i))
    return out


def require(instance: Any, schema: dict, source: str) -> None:
    """Raise one ConfigError listing every problem of ``instance`` under ``schema`` by JSON path
    (``source: 2 problems: $.items.i001.type: ...; $.page_id: ...``)."""
    found = problems(instance, schema)
    if found:
        listed = "; ".join(f"{p}: {m}" for p, m in found)
        raise ConfigError(f"{source}: {len(found)} problem{'s' if len(found) != 1 else ''}: {listed}")
