"""Request parameters: Stripe's bracket-nested form encoding (and JSON), and a strict reader.

`decode_form("tiers[0][up_to]=inf&metadata[plan]=pro")` gives
`{"tiers": [{"up_to": "inf"}], "metadata": {"plan": "pro"}}`.

Handlers read parameters through `Params`; whatever a handler did not read is an unknown
parameter and gets Stripe's `parameter_unknown` error, so a typo never passes silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from billing_site.errors import BillingError

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_NESTING_DEPTH = 6


class ParameterError(BillingError):
    pass


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    rest = "[" + rest
    parts = _KEY_PART.findall(rest)
    if "".join(f"[{part}]" for part in parts) != rest or not head:
        raise ParameterError(
            f"Malformed parameter name: '{key}'.", param=key, code="parameter_invalid"
        )
    if len(parts) > MAX_NESTING_DEPTH:
        raise ParameterError(f"Parameter '{key}' is nested too deeply.", param=key)
    return [head, *parts]


def _listify(node: Any, path: str) -> Any:
    """Turn dicts whose keys are 0..n-1 (or the empty `[]` suffix) into lists, recursively."""
    if not isinstance(node, dict):
        return node
    converted = {k: _listify(v, f"{path}[{k}]" if path else k) for k, v in node.items()}
    if converted and all(isinstance(k, int) for k in converted):
        indexes = sorted(converted)
        if indexes != list(range(len(indexes))):
            raise ParameterError(
                f"Array parameter '{path}' must use consecutive indexes starting at 0.",
                param=path,
            )
        return [converted[i] for i in indexes]
    if any(isinstance(k, int) for k in converted):
        raise ParameterError(f"Parameter '{path}' mixes array indexes and names.", param=path)
    return converted


def decode_form(body: str) -> dict[str, Any]:
    root: dict[Any, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True, strict_parsing=False):
        parts = _split_key(raw_key)
        node = root
        for depth, part in enumerate(parts):
            is_last = depth == len(parts) - 1
            key: Any = part
            if depth > 0 and part == "":
                key = len([k for k in node if isinstance(k, int)])
            elif depth > 0 and part.isdigit():
                key = int(part)
            if is_last:
                if key in node:
                    raise ParameterError(f"Parameter '{raw_key}' was given twice.", param=raw_key)
                node[key] = value
            else:
                child = node.setdefault(key, {})
                if not isinstance(child, dict):
                    raise ParameterError(
                        f"Parameter '{raw_key}' conflicts with a plain value of the same name.",
                        param=raw_key,
                    )
                node = child
    return {k: _listify(v, k) for k, v in root.items()}


def _join(prefix: str, name: str | int) -> str:
    return f"{prefix}[{name}]" if prefix else str(name)


class Params:
    """Strict, typed access to one object's parameters. `prefix` is used in error `param`s."""

    def __init__(self, data: dict[str, Any] | None, prefix: str = ""):
        if data is not None and not isinstance(data, dict):
            raise ParameterError(
                f"Invalid object for '{prefix}': expected a hash of parameters.", param=prefix
            )
        self.data = data or {}
        self.prefix = prefix
        self._read: set[str] = set()

    def name(self, key: str | int) -> str:
        return _join(self.prefix, key)

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        self._read.add(key)
        return self.data.get(key, default)

    def mark_read(self, *keys: str) -> None:
        self._read.update(keys)

    def unknown(self) -> list[str]:
        return [self.name(k) for k in self.data if k not in self._read]

    def reject_unknown(self) -> None:
        unknown = self.unknown()
        if unknown:
            raise ParameterError(
                f"Received unknown parameter: {unknown[0]}",
                param=unknown[0],
                code="parameter_unknown",
            )

    def _missing(self, key: str) -> ParameterError:
        return ParameterError(
            f"Missing required param: {self.name(key)}.",
            param=self.name(key),
            code="parameter_missing",
        )

    def _scalar(self, key: str, required: bool) -> Any:
        value = self.raw(key)
        if value is None or value == "":
            if required:
                raise self._missing(key)
            return None
        if isinstance(value, (dict, list)):
            raise ParameterError(
                f"Invalid value for {self.name(key)}: expected a single value, not an object.",
                param=self.name(key),
                code="parameter_invalid",
            )
        return value

    def string(
        self, key: str, *, required: bool = False, max_length: int = 5000, allow_blank: bool = False
    ) -> str | None:
        if allow_blank and self.data.get(key) == "":
            self._read.add(key)
            return ""
        value = self._scalar(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ParameterError(
                f"Invalid string: {self.name(key)} must be a string.", param=self.name(key)
            )
        value = str(value)
        if len(value) > max_length:
            raise ParameterError(
                f"Invalid string: {self.name(key)} must be at most {max_length} characters "
                f"(got {len(value)}).",
                param=self.name(key),
            )
        return value

    def choice(self, key: str, choices: Iterable[str], *, required: bool = False) -> str | None:
        value = self.string(key, required=required)
        allowed = list(choices)
        if value is not None and value not in allowed:
            raise ParameterError(
                f"Invalid {self.name(key)}: must be one of {', '.join(allowed)} (got '{value}').",
                param=self.name(key),
            )
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._scalar(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not re.fullmatch(r"-?\d{1,18}", str(value)):
            raise ParameterError(
                f"Invalid integer: {self.name(key)} must be a whole number (got '{value}').",
                param=self.name(key),
            )
        number = int(value)
        if minimum is not None and number < minimum:
            raise ParameterError(
                f"Invalid {self.name(key)}: must be at least {minimum} (got {number}).",
                param=self.name(key),
            )
        if maximum is not None and number > maximum:
            raise ParameterError(
                f"Invalid {self.name(key)}: must be at most {maximum} (got {number}).",
                param=self.name(key),
            )
        return number

    def boolean(self, key: str, *, required: bool = False) -> bool | None:
        value = self._scalar(key, required)
        if value is None:
            return None
        if value in (True, "true", "True"):
            return True
        if value in (False, "false", "False"):
            return False
        raise ParameterError(
            f"Invalid boolean: {self.name(key)} must be true or false (got '{value}').",
            param=self.name(key),
        )

    def decimal(self, key: str, *, required: bool = False) -> Decimal | None:
        value = self._scalar(key, required)
        if value is None:
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            number = None
        if isinstance(value, bool) or number is None or not number.is_finite():
            raise ParameterError(
                f"Invalid decimal: {self.name(key)} must be a number (got '{value}').",
                param=self.name(key),
            )
        return number

    def nested(self, key: str, *, required: bool = False) -> Params | None:
        value = self.raw(key)
        if value is None or value == "":
            if required:
                raise self._missing(key)
            return None
        if not isinstance(value, dict):
            raise ParameterError(
                f"Invalid object: {self.name(key)} must be a hash of parameters "
                f"(for example {self.name(key)}[field]=value).",
                param=self.name(key),
            )
        return Params(value, self.name(key))

    def list_of(self, key: str) -> list[Any] | None:
        value = self.raw(key)
        if value is None or value == "":
            return None
        if isinstance(value, dict):
            raise ParameterError(
                f"Invalid array: {self.name(key)} must be a list ({self.name(key)}[0]=...).",
                param=self.name(key),
            )
        if not isinstance(value, list):
            value = [value]
        return value

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """Stripe's metadata rules: at most 50 keys, keys up to 40 characters, values up to 500.

        Returns the requested changes; an empty-string value means "remove this key", and an
        empty string for the whole parameter means "remove every key" (returned as {}).
        """
        value = self.raw(key)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise ParameterError(
                f"Invalid metadata: {self.name(key)} must be a hash of string keys and values.",
                param=self.name(key),
            )
        if len(value) > 50:
            raise ParameterError(
                "Invalid metadata: at most 50 keys are allowed.", param=self.name(key)
            )
        clean: dict[str, str] = {}
        for meta_key, meta_value in value.items():
            name = self.name(key) + f"[{meta_key}]"
            if len(str(meta_key)) > 40:
                raise ParameterError(
                    f"Invalid metadata key '{meta_key}': keys can be at most 40 characters.",
                    param=name,
                )
            if isinstance(meta_value, (dict, list)) or meta_value is None:
                raise ParameterError(
                    f"Invalid metadata value for '{meta_key}': values must be strings.", param=name
                )
            if len(str(meta_value)) > 500:
                raise ParameterError(
                    f"Invalid metadata value for '{meta_key}': values can be at most 500 "
                    "characters.",
                    param=name,
                )
            clean[str(meta_key)] = str(meta_value)
        return clean

    def expand(self) -> list[str]:
        return [str(item) for item in (self.list_of("expand") or [])]


def merge_metadata(current: dict[str, str], changes: dict[str, str] | None) -> dict[str, str]:
    if changes is None:
        return current
    if changes == {}:
        return {}
    merged = dict(current)
    for key, value in changes.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
