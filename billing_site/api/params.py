"""Request parameters: Stripe's bracket-nested form encoding (and JSON), and a strict reader.

`decode_form("tiers[0][up_to]=inf&metadata[plan]=pro")` gives
`{"tiers": [{"up_to": "inf"}], "metadata": {"plan": "pro"}}`.

Handlers read parameters through `Params`; whatever a handler did not read is an unknown
parameter and gets Stripe's `parameter_unknown` error, so a typo never passes silently.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from billing_site.api.expand import requested_paths
from billing_site.clock import from_unix
from billing_site.db import UNSTORABLE_TEXT as _UNSTORABLE_TEXT
from billing_site.db import escape_unstorable
from billing_site.errors import BillingError, ErrorCode

_KEY_PART = re.compile(r"\[([^\[\]]*)\]")
MAX_NESTING_DEPTH = 6
LAST_UNIX_TIMESTAMP = 253402300799  # 9999-12-31 23:59:59 UTC, the last time Python can hold


class ParameterError(BillingError):
    pass


# --- what every request must respect, whatever the endpoint -----------------------------------

# Far more than any endpoint needs (a price with 100 tiers is ~400 fields); bounds the work a
# 1 MB body can cause before any handler runs.
MAX_FORM_FIELDS = 10_000
# Digits a JSON number may have. Python refuses to read integers of 4,300+ digits, and no amount
# or quantity needs more than a few dozen.
MAX_NUMBER_LENGTH = 100


def find_unstorable_text(value: Any, path: str) -> str | None:
    """The parameter name of the first key or string in `value` that the database can't store."""
    if isinstance(value, str):
        return path if _UNSTORABLE_TEXT.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = _join(path, key)
            if isinstance(key, str) and _UNSTORABLE_TEXT.search(key):
                return name
            found = find_unstorable_text(item, name)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unstorable_text(item, _join(path, index))
            if found:
                return found
    return None


def refuse_unstorable_text(value: Any, path: str) -> None:
    found = find_unstorable_text(value, path)
    if found is not None:
        name = escape_unstorable(found)
        raise ParameterError(
            f"Invalid value for {name}: text can't contain NUL characters (\\u0000) or "
            "unpaired surrogates.",
            param=name,
            code=ErrorCode.PARAMETER_INVALID,
        )


def _split_key(key: str) -> list[str]:
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    rest = "[" + rest
    parts = _KEY_PART.findall(rest)
    if "".join(f"[{part}]" for part in parts) != rest or not head:
        raise ParameterError(
            f"Malformed parameter name: '{key}'.", param=key, code=ErrorCode.PARAMETER_INVALID
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
    try:
        pairs = parse_qsl(
            body, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS
        )
    except ValueError:
        raise ParameterError(
            f"Too many parameters: a request can carry at most {MAX_FORM_FIELDS}."
        ) from None
    root: dict[Any, Any] = {}
    # `expand[]=a&expand[]=b` appends: the next index of each list being built, by node.
    next_index: dict[int, int] = {}
    for raw_key, value in pairs:
        parts = _split_key(raw_key)
        node = root
        for depth, part in enumerate(parts):
            is_last = depth == len(parts) - 1
            key: Any = part
            if depth > 0 and part == "":
                key = next_index.get(id(node), 0)
            elif depth > 0 and part.isascii() and part.isdigit():
                if len(part) > 6:
                    raise ParameterError(
                        f"Array index too large in parameter '{raw_key}'.", param=raw_key
                    )
                key = int(part)
            if isinstance(key, int):
                next_index[id(node)] = max(next_index.get(id(node), 0), key + 1)
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


class _NumberTooLong:
    """A JSON number past MAX_NUMBER_LENGTH, kept (unread) so the error can name its parameter."""


class _NotANumber:
    """JSON's non-standard NaN / Infinity, which Python's reader would otherwise accept."""


class _ObjectWithRepeatedKey(dict):
    repeated_key: str


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _ObjectWithRepeatedKey(obj)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.repeated_key = key
            break
        seen.add(key)
    return marked


def _json_number(parse: Any) -> Any:
    return lambda text: parse(text) if len(text) <= MAX_NUMBER_LENGTH else _NumberTooLong()


def decode_json(body: bytes) -> dict[str, Any]:
    """A JSON request body, held to the same rules as form bodies.

    Numbers with a fraction arrive as `Decimal` (0.1 stays exact); a repeated key is refused as
    in forms, and so is nesting deeper than forms allow.
    """
    try:
        data = json.loads(
            body or b"{}",
            object_pairs_hook=_json_object,
            parse_float=_json_number(Decimal),
            parse_int=_json_number(int),
            parse_constant=lambda _: _NotANumber(),
        )
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(f"Invalid JSON body: {exc}.") from exc
    except RecursionError:
        raise ParameterError(
            f"Invalid JSON body: nested more than {MAX_NESTING_DEPTH} levels deep."
        ) from None
    if not isinstance(data, dict):
        raise ParameterError("Invalid JSON body: the top level must be an object.")
    _check_json(data, "", 0)
    return data


def _check_json(value: Any, path: str, depth: int) -> None:
    if isinstance(value, (dict, list)) and depth > MAX_NESTING_DEPTH:
        raise ParameterError(f"Parameter '{path}' is nested too deeply.", param=path)
    if isinstance(value, _ObjectWithRepeatedKey):
        name = _join(path, value.repeated_key)
        raise ParameterError(f"Parameter '{name}' was given twice.", param=name)
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, _join(path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, _join(path, index), depth + 1)
    elif isinstance(value, _NumberTooLong):
        raise ParameterError(
            f"Invalid number for {path}: at most {MAX_NUMBER_LENGTH} digits.",
            param=path,
            code=ErrorCode.PARAMETER_INVALID,
        )
    elif isinstance(value, _NotANumber):
        raise ParameterError(
            f"Invalid number for {path}: NaN and Infinity are not numbers.",
            param=path,
            code=ErrorCode.PARAMETER_INVALID,
        )


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

    def raw(self, key: str, default: Any = None, *, check_text: bool = True) -> Any:
        """The value as sent. Text the database can't store (NUL, a lone surrogate) anywhere in
        it is refused, naming the parameter; `check_text=False` is for a handler that rejects
        such items one by one (a batch where each item succeeds or fails on its own)."""
        self._read.add(key)
        value = self.data.get(key, default)
        if check_text:
            refuse_unstorable_text(value, self.name(key))
        return value

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
                code=ErrorCode.PARAMETER_UNKNOWN,
            )

    def _missing(self, key: str) -> ParameterError:
        return ParameterError(
            f"Missing required param: {self.name(key)}.",
            param=self.name(key),
            code=ErrorCode.PARAMETER_MISSING,
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
                code=ErrorCode.PARAMETER_INVALID,
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

    def timestamp(self, key: str, *, required: bool = False) -> dt.datetime | None:
        """A Unix timestamp in seconds (Stripe's way of sending a time), as an aware UTC time."""
        seconds = self.integer(key, required=required, minimum=0, maximum=LAST_UNIX_TIMESTAMP)
        return None if seconds is None else from_unix(seconds)

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

    def new_metadata(self, key: str = "metadata") -> dict[str, str]:
        """Metadata for an object being created: the keys given, minus those set to ""."""
        return merge_metadata({}, self.metadata(key))

    def updated_metadata(
        self, current: dict[str, str], key: str = "metadata"
    ) -> dict[str, str] | None:
        """`current` with the requested changes applied, or None when metadata wasn't sent."""
        changes = self.metadata(key)
        return None if changes is None else merge_metadata(current, changes)

    def expand(self) -> list[str]:
        """The `expand[]` paths (applied to every response by `billing_site.api.expand`)."""
        return requested_paths(self.list_of("expand"))


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
