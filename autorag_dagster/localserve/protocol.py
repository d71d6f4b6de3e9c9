"""Request bodies read the way Ollama's Go server binds them, with its error texts.

A wrongly typed field is a 400 ``json: cannot unmarshal <json type> into Go struct field
<Struct>.<field> of type <go type>``; unknown fields are ignored; ``null`` means "not given".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .durations import DurationError, parse_keep_alive


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def _reject_constant(name: str) -> None:
    raise json.JSONDecodeError(f"invalid character {name[0]!r} looking for beginning of value", name, 0)


def decode_body(raw: bytes, struct: str) -> dict[str, Any]:
    if not raw.strip():
        raise bad_request("missing request body")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise bad_request(f"invalid JSON in request body: {exc.msg} at offset {exc.pos}") from None
    if not isinstance(body, dict):
        raise bad_request(f"json: cannot unmarshal {_json_type(body)} into Go value of type api.{struct}")
    return body


class Body:
    """Typed access to one decoded request body."""

    def __init__(self, data: dict[str, Any], struct: str):
        self.data = data
        self.struct = struct

    def _get(self, key: str, accepted: tuple[type, ...], go_type: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, accepted) or (bool not in accepted and isinstance(value, bool)):
            raise bad_request(
                f"json: cannot unmarshal {_json_type(value)} into Go struct field {self.struct}.{key} of type {go_type}"
            )
        return value

    def text(self, key: str) -> str:
        return self._get(key, (str,), "string") or ""

    def flag(self, key: str) -> bool | None:
        return self._get(key, (bool,), "bool")

    def integer(self, key: str) -> int:
        value = self._get(key, (int, float), "int")
        if value is not None and value != int(value):
            raise bad_request(
                f"json: cannot unmarshal number {value} into Go struct field {self.struct}.{key} of type int"
            )
        return int(value or 0)

    def mapping(self, key: str) -> dict[str, Any] | None:
        return self._get(key, (dict,), "map[string]interface {}")

    def array(self, key: str, go_type: str) -> list[Any] | None:
        return self._get(key, (list,), go_type)

    def model(self) -> str:
        return self.text("model") or self.text("name")

    def stream(self) -> bool:
        """Streaming is the default; only an explicit ``false`` disables it."""
        return self.flag("stream") is not False

    def keep_alive(self) -> float | None:
        try:
            return parse_keep_alive(self.data.get("keep_alive"))
        except DurationError as exc:
            raise bad_request(str(exc)) from None

    def think(self) -> bool | str | None:
        value = self.data.get("think")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value in ("high", "medium", "low"):
                return value
            raise bad_request(f'invalid think value: "{value}" (must be "high", "medium", "low", true, or false)')
        raise bad_request('think must be a boolean or string ("high", "medium", "low", true, or false)')

    def messages(self) -> list[dict[str, str]]:
        messages = self.array("messages", "[]api.Message") or []
        result = []
        for message in messages:
            if not isinstance(message, dict):
                raise bad_request(
                    f"json: cannot unmarshal {_json_type(message)} into Go struct field "
                    f"{self.struct}.messages of type api.Message"
                )
            fields = Body(message, "Message")
            result.append({"role": fields.text("role"), "content": fields.text("content")})
        return result


@dataclass(frozen=True)
class Format:
    """The ``format`` field: None, "json" or a JSON schema; anything else is invalid (a 500, after load)."""

    raw: Any

    @property
    def given(self) -> bool:
        return self.raw not in (None, "")

    @property
    def value(self) -> str | dict[str, Any] | None:
        if not self.given:
            return None
        if self.raw == "json" or isinstance(self.raw, dict):
            return self.raw
        raise ApiError(
            500, f'invalid format: {json.dumps(json.dumps(self.raw))}; expected "json" or a valid JSON Schema object'
        )

    @property
    def title(self) -> str | None:
        return self.raw.get("title") if isinstance(self.raw, dict) and isinstance(self.raw.get("title"), str) else None
