"""A value valid against a JSON schema, derived deterministically from a seed and the prompt's words and numbers.

Covers what pydantic's ``model_json_schema()`` produces: ``$ref``/``$defs``, ``anyOf``/``oneOf``/
``allOf``, ``enum``/``const``, objects (``required``, ``additionalProperties``), arrays
(``items``, ``prefixItems``, ``minItems``/``maxItems``, ``uniqueItems``), strings (``minLength``/
``maxLength``, common ``format``s), numbers (``minimum``/``maximum``, exclusive bounds,
``multipleOf``) and booleans. Deeply nested optional parts are left out so recursive schemas end.
"""

from __future__ import annotations

import json
import math
import random
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

_DEEP = 4  # below this depth only required properties and minimal arrays are produced
_FALLBACK_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
_LONG_TEXT = ("summary", "description", "reason", "text", "explanation", "rationale", "content", "answer")
_SHORT_TEXT = ("title", "name", "label", "topic", "heading")


class SchemaInstance:
    def __init__(self, root: dict[str, Any], rng: random.Random, words: Sequence[str], numbers: Sequence[float]):
        self.root = root
        self.rng = rng
        self.words = list(words) or list(_FALLBACK_WORDS)
        self.numbers = list(numbers)

    def build(self) -> Any:
        return self._value(self.root, 0, "")

    # -- schema plumbing -------------------------------------------------------------------
    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref are supported, got {ref!r}")
        node: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _value(self, schema: Any, depth: int, name: str) -> Any:
        if schema is True or schema == {}:
            return self._text(name)
        if not isinstance(schema, dict):
            raise ValueError(f"unsupported schema {schema!r}")
        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            return self._value({**self._resolve(schema["$ref"]), **rest}, depth + 1, name)
        if "allOf" in schema:
            merged = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self._resolve(part["$ref"]) if "$ref" in part else part
                merged = _merge(merged, part)
            return self._value(merged, depth, name)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self._value(self._choose(schema[key], depth), depth, name)
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = "null" if not kinds or (depth > _DEEP and "null" in kind) else self.rng.choice(kinds)
        if kind is None:
            kind = (
                "object"
                if "properties" in schema
                else "array"
                if "items" in schema or "prefixItems" in schema
                else "string"
            )
        return getattr(self, f"_{kind}")(schema, depth, name)

    def _choose(self, options: list[Any], depth: int) -> Any:
        nulls = [o for o in options if isinstance(o, dict) and o.get("type") == "null"]
        others = [o for o in options if o not in nulls]
        if nulls and (depth > _DEEP or not others):
            return nulls[0]
        return self.rng.choice(others)

    # -- types ---------------------------------------------------------------------------------
    def _null(self, schema: dict, depth: int, name: str) -> None:
        return None

    def _boolean(self, schema: dict, depth: int, name: str) -> bool:
        return self.rng.random() < 0.5

    def _object(self, schema: dict, depth: int, name: str) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        keys = [k for k in props if depth < _DEEP or k in required]
        result = {k: self._value(props[k], depth + 1, k) for k in keys}
        extra = schema.get("additionalProperties")
        wanted = schema.get("minProperties", 0 if props or depth >= _DEEP else 1)
        if extra is not False:
            extra_schema = extra if isinstance(extra, dict) else {"type": "string"}
            while len(result) < min(wanted, schema.get("maxProperties", wanted)):
                key = self._unique_key(result)
                result[key] = self._value(extra_schema, depth + 1, key)
        return result

    def _unique_key(self, taken: dict[str, Any]) -> str:
        key = re.sub(r"\W+", "_", self.rng.choice(self.words).lower())
        while key in taken:
            key += "_"
        return key

    def _array(self, schema: dict, depth: int, name: str) -> list[Any]:
        prefix: list[Any] = schema.get("prefixItems", [])
        items = schema.get("items", {} if not prefix else False)
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", max(low, 1) + 2)
        if items is False:
            high = min(high, len(prefix))
        count = low if depth >= _DEEP else min(high, self.rng.randint(max(low, 1), max(low, 1) + 2))
        result: list[Any] = []
        seen: set[str] = set()
        attempts = 0
        while len(result) < count and attempts < count * 5:
            attempts += 1
            index = len(result)
            value = self._value(prefix[index] if index < len(prefix) else items, depth + 1, name)
            key = json.dumps(value, sort_keys=True, default=str)
            if schema.get("uniqueItems") and key in seen:
                continue
            seen.add(key)
            result.append(value)
        return result

    def _string(self, schema: dict, depth: int, name: str) -> str:
        fmt = schema.get("format")
        moment = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=self.rng.randrange(3 * 365 * 86400))
        by_format = {
            "date-time": moment.isoformat().replace("+00:00", "Z"),
            "date": moment.date().isoformat(),
            "time": moment.time().isoformat() + "Z",
            "email": f"{self._slug()}@example.com",
            "uri": f"https://example.com/{self._slug()}",
            "url": f"https://example.com/{self._slug()}",
            "uuid": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "ipv4": ".".join(str(self.rng.randrange(1, 255)) for _ in range(4)),
        }
        text = by_format.get(fmt) or self._text(name)
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        while len(text) < low:
            text += " " + self.rng.choice(self.words)
        if high is not None:
            text = text[:high].rstrip() if len(text[:high].rstrip()) >= low else text[:high]
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, text):
            text = next((w for w in self.words if re.search(pattern, w)), text)
        return text

    def _slug(self) -> str:
        return re.sub(r"\W+", "-", self.rng.choice(self.words).lower()).strip("-") or "x"

    def _text(self, name: str) -> str:
        lowered = name.lower()
        if any(hint in lowered for hint in _LONG_TEXT):
            picked = self.rng.choices(self.words, k=self.rng.randint(8, 16))
            return " ".join(picked).capitalize() + "."
        if any(hint in lowered for hint in _SHORT_TEXT):
            return " ".join(self.rng.choices(self.words, k=self.rng.randint(2, 5))).title()
        return " ".join(self.rng.choices(self.words, k=self.rng.randint(1, 4)))

    def _integer(self, schema: dict, depth: int, name: str) -> int:
        return int(self._number(schema, depth, name, integer=True))

    def _number(self, schema: dict, depth: int, name: str, integer: bool = False) -> float:
        low, high = _bounds(schema, integer)
        step = schema.get("multipleOf")

        def fits(value: float) -> bool:
            return (
                (low is None or value >= low)
                and (high is None or value <= high)
                and (not step or math.isclose(value / step, round(value / step), abs_tol=1e-9))
                and (not integer or value == int(value))
            )

        candidates = [n for n in self.numbers if fits(n)]
        if candidates and self.rng.random() < 0.8:
            return self.rng.choice(candidates)
        start = low if low is not None else (high - 100 if high is not None else 0)
        end = high if high is not None else start + 100
        if step:
            first, last = math.ceil(start / step), math.floor(end / step)
            value = step * (self.rng.randint(first, last) if first <= last else first)
            return int(value) if integer else value
        if integer:
            return self.rng.randint(math.ceil(start), max(math.ceil(start), math.floor(end)))
        value = round(self.rng.uniform(start, end), 3)
        return value if fits(value) else (start + end) / 2


def _bounds(schema: dict, integer: bool) -> tuple[float | None, float | None]:
    """Inclusive lower and upper bounds (exclusive ones tightened by one step)."""
    nudge = 1 if integer else 1e-6
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), (int, float)) and not isinstance(schema["exclusiveMinimum"], bool):
        low = max(low if low is not None else -math.inf, schema["exclusiveMinimum"] + nudge)
    if isinstance(schema.get("exclusiveMaximum"), (int, float)) and not isinstance(schema["exclusiveMaximum"], bool):
        high = min(high if high is not None else math.inf, schema["exclusiveMaximum"] - nudge)
    return low, high


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {**a, **b}
    if "properties" in a or "properties" in b:
        merged["properties"] = {**a.get("properties", {}), **b.get("properties", {})}
    if "required" in a or "required" in b:
        merged["required"] = sorted({*a.get("required", []), *b.get("required", [])})
    return merged
