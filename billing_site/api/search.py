"""Stripe's search endpoints (`GET /v1/customers/search?query=...`): the query language, its
translation to a database filter, and the `search_result` pages.

The language is parsed with lark from `search.lark`; a query that doesn't parse gets an
`invalid_request_error` on `query` naming the position (0-based, like Stripe's) where it stops.
Each resource declares its searchable fields (Stripe's "query fields" for it) in its app's API
module, as a `Search`; the kinds of field below decide which operators a field takes:

- `Token`: an id, a status, a currency: `:` only, exact (currencies ignore case).
- `Text`: `:` (whole value, ignoring case) and `~` (contains, at least 3 characters).
- `Number` and `Timestamp` (unix seconds): `:`, `=`, `>`, `<`, `>=`, `<=`.
- `Boolean`: `:"true"` / `:"false"`.
- `Metadata`: `metadata["key"]:"value"` (exact), `metadata["key"]:null` (no such key).
- `NeverSet`: a field Stripe searches on that is always `null` here (`phone`, `url`):
  `field:null` matches everything, any other value nothing.

Every kind takes `field:null` (no value) and a leading `-` negates a clause. Clauses join with
`AND`, `OR` or a space (AND), but not both AND and OR, as Stripe requires; at most 10 clauses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from django.core import signing
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact, IsNull
from lark import Lark, Tree
from lark import Token as LarkToken
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from billing_site.api.base import Listing
from billing_site.api.errors import ApiError
from billing_site.api.expand import ListPage
from billing_site.api.params import LAST_UNIX_TIMESTAMP, Params
from billing_site.clock import from_unix
from billing_site.errors import ErrorCode

MAX_CLAUSES = 10
MIN_SUBSTRING = 3
MAX_QUERY_LENGTH = 5000  # Stripe's limit on the `query` parameter


class SearchError(ApiError):
    def __init__(self, message: str, *, param: str = "query"):
        super().__init__(message, param=param, code=ErrorCode.PARAMETER_INVALID)


# --- the parsed query -------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    field: str  # "email", or "metadata" for metadata["key"]
    key: str | None  # the metadata key
    operator: str
    value: str | Decimal | None  # None for `null`
    quoted: bool
    negated: bool
    position: int

    @property
    def name(self) -> str:
        return self.field if self.key is None else f'{self.field}["{self.key}"]'


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("search.lark")).read_text()
    return Lark(grammar, start="query", parser="lalr", propagate_positions=True)


def _unquote(token: str) -> str:
    body = token[1:-1]
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        out.append(next(chars, "\\") if char == "\\" else char)
    return "".join(out)


_EXPECTED = {
    "STRING": "a quoted value",
    "NUMBER": "a number",
    "NULL": "null",
    "OPERATOR": "an operator (: ~ > < >= <= =)",
    "NAME": "a field name",
    "NEGATE": "-",
    "LSQB": "[",
    "RSQB": "]",
    "AND": "AND",
    "OR": "OR",
}


def _syntax_error(query: str, exc: UnexpectedInput) -> SearchError:
    if isinstance(exc, UnexpectedCharacters):
        position, found, expected = exc.pos_in_stream, f"'{query[exc.pos_in_stream]}'", exc.allowed
    elif isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        position, found, expected = exc.token.start_pos, f"'{exc.token}'", exc.expected
    else:  # the query stops where a clause still needs its operator or value
        position, found = len(query), "end of query"
        expected = getattr(exc, "expected", None)
    names = sorted({_EXPECTED.get(name, name) for name in expected or ()})
    wanted = f" Expected {', '.join(names)}." if names else ""
    return SearchError(
        f"Invalid search query: unexpected {found} at position {position}.{wanted} A query is "
        'clauses like email:"jane@example.com", joined by AND or OR; see '
        "https://docs.stripe.com/search#search-query-language."
    )


def parse_query(query: str) -> tuple[list[Clause], str]:
    """The query's clauses and how they join ("and" or "or")."""
    if not query.strip():
        raise SearchError("Invalid search query: the query is empty.")
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchError(f"Invalid search query: at most {MAX_QUERY_LENGTH} characters.")
    try:
        tree = _parser().parse(query)
    except UnexpectedInput as exc:
        raise _syntax_error(query, exc) from None
    clauses: list[Clause] = []
    joins: list[str] = []  # "and" / "or", as written between clauses
    for child in tree.children:
        if child.data == "clause":
            clauses.append(_clause(child))
        else:
            joins.append(child.data.rstrip("_"))
    joins += ["and"] * (len(clauses) - 1 - len(joins))  # a space between clauses means AND
    if len(set(joins)) > 1:
        raise SearchError(
            "Invalid search query: AND and OR can't be combined in one query (a space between "
            "clauses means AND). Run one query per OR group instead."
        )
    if len(clauses) > MAX_CLAUSES:
        raise SearchError(f"Invalid search query: at most {MAX_CLAUSES} clauses are allowed.")
    return clauses, joins[0] if joins else "and"


def _clause(node: Tree) -> Clause:
    parts = list(node.children)
    negated = isinstance(parts[0], LarkToken) and parts[0].type == "NEGATE"
    if negated:
        parts = parts[1:]
    field_node, operator, value_node = parts
    key = _unquote(str(field_node.children[1])) if field_node.data == "keyed_field" else None
    raw = value_node.children[0]
    value: str | Decimal | None
    if value_node.data == "null":
        value = None
    elif value_node.data == "number":
        value = Decimal(str(raw))
    else:
        value = _unquote(str(raw))
    return Clause(
        field=str(field_node.children[0]),
        key=key,
        operator=str(operator),
        value=value,
        quoted=value_node.data == "string",
        negated=negated,
        position=node.meta.start_pos,
    )


# --- the kinds of field -----------------------------------------------------------------------


class SearchField:
    operators: ClassVar[tuple[str, ...]] = (":",)
    takes_key = False

    def __init__(self, lookup: str = ""):
        self.lookup = lookup

    def condition(self, clause: Clause) -> Q:
        if clause.operator not in self.operators:
            raise SearchError(
                f"Invalid search query: the field {clause.name} (position {clause.position}) "
                f"doesn't take the operator '{clause.operator}'; it takes "
                f"{' '.join(self.operators)}."
            )
        if clause.value is None:
            if clause.operator != ":":
                raise _bad_value(clause, "null can only follow ':'")
            return self.is_null()
        return self.matches(clause)

    def is_null(self) -> Q:
        return Q(**{f"{self.lookup}__isnull": True})

    def matches(self, clause: Clause) -> Q:  # pragma: no cover - every kind overrides it
        raise NotImplementedError


def _bad_value(clause: Clause, why: str) -> SearchError:
    return SearchError(
        f"Invalid search query: invalid value for {clause.name} (position {clause.position}): "
        f"{why}."
    )


def _text(clause: Clause) -> str:
    if not clause.quoted:
        raise _bad_value(clause, 'values are quoted, for example "abc"')
    return str(clause.value)


class Token(SearchField):
    def __init__(self, lookup: str, *, ignore_case: bool = False, blank_is_null: bool = False):
        super().__init__(lookup)
        self.ignore_case = ignore_case
        self.blank_is_null = blank_is_null

    def is_null(self) -> Q:
        # The API shows a blank text column (an unset email) as null.
        missing = super().is_null()
        return missing | Q(**{self.lookup: ""}) if self.blank_is_null else missing

    def matches(self, clause: Clause) -> Q:
        value = _text(clause) if clause.quoted else str(clause.value)
        return Q(**{f"{self.lookup}__iexact" if self.ignore_case else self.lookup: value})


class Text(Token):
    operators = (":", "~")

    def __init__(self, lookup: str):
        super().__init__(lookup, ignore_case=True, blank_is_null=True)

    def matches(self, clause: Clause) -> Q:
        value = _text(clause)
        if clause.operator == "~":
            if len(value) < MIN_SUBSTRING:
                raise _bad_value(clause, f"~ needs at least {MIN_SUBSTRING} characters")
            return Q(**{f"{self.lookup}__icontains": value})
        return super().matches(clause)


_COMPARISONS = {":": "exact", "=": "exact", ">": "gt", "<": "lt", ">=": "gte", "<=": "lte"}


class Number(SearchField):
    operators = tuple(_COMPARISONS)

    def number(self, clause: Clause) -> Any:
        try:
            value = Decimal(str(clause.value))
        except InvalidOperation:
            raise _bad_value(clause, "expected a number") from None
        if value != value.to_integral_value() or abs(value) >= 10**18:
            raise _bad_value(clause, "expected a whole number")
        return int(value)

    def matches(self, clause: Clause) -> Q:
        return Q(**{f"{self.lookup}__{_COMPARISONS[clause.operator]}": self.number(clause)})


class Timestamp(Number):
    """Unix seconds. `created:1700000000` is that second, as in the list filters."""

    def matches(self, clause: Clause) -> Q:
        seconds = self.number(clause)
        if not 0 <= seconds <= LAST_UNIX_TIMESTAMP:
            raise _bad_value(clause, "expected a unix timestamp in seconds")
        moment = from_unix(seconds)
        if clause.operator in (":", "="):
            if seconds == LAST_UNIX_TIMESTAMP:
                # The last second there is: nothing comes after it to bound it.
                return Q(**{f"{self.lookup}__gte": moment})
            return Q(
                **{f"{self.lookup}__gte": moment, f"{self.lookup}__lt": from_unix(seconds + 1)}
            )
        return Q(**{f"{self.lookup}__{_COMPARISONS[clause.operator]}": moment})


class Boolean(SearchField):
    def matches(self, clause: Clause) -> Q:
        text = str(clause.value).lower()
        if text not in ("true", "false"):
            raise _bad_value(clause, 'expected "true" or "false"')
        return Q(**{self.lookup: text == "true"})


class MetadataValue(KeyTextTransform):
    """`metadata ->> key` with the key taken as written: Django reads a key of digits ("1") as
    an array index, which would never match an object's key."""

    def as_postgresql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"({lhs} ->> %s::text)", (*params, self.key_name)

    def as_sqlite(self, compiler, connection):
        # SQLite's JSON paths can't name a key holding a double quote; json_each can.
        lhs, params = compiler.compile(self.lhs)
        sql = f"(SELECT _m.value FROM JSON_EACH({lhs}) AS _m WHERE _m.key = %s)"
        return sql, (*params, self.key_name)


class Metadata(SearchField):
    takes_key = True

    def __init__(self, lookup: str = "metadata"):
        super().__init__(lookup)

    def condition(self, clause: Clause) -> Q:
        if clause.key is None:
            raise SearchError(
                f'Invalid search query: search metadata by key, as {self.lookup}["key"]:"value" '
                f"(position {clause.position})."
            )
        if clause.value is None and clause.operator == ":":
            # Metadata values are strings, never JSON null: no value is no key.
            return Q(IsNull(MetadataValue(clause.key, self.lookup), True))
        return super().condition(clause)

    def matches(self, clause: Clause) -> Q:
        value = MetadataValue(clause.key, self.lookup)
        # "Has the key" keeps the clause's negation true for objects without the key (NOT of
        # the comparison alone would be NULL for them, and exclude them).
        return Q(IsNull(value, False)) & Q(Exact(value, _text(clause)))


class NeverSet(SearchField):
    """A field Stripe has that is always null here: only `field:null` matches (everything)."""

    def is_null(self) -> Q:
        # Not `Q()`: an empty Q vanishes when combined or negated (`-phone:null` would match
        # everything instead of nothing).
        return Q(pk__isnull=False)

    def matches(self, clause: Clause) -> Q:
        return Q(pk__in=[])


# --- a resource's search ----------------------------------------------------------------------


@dataclass(frozen=True)
class Search:
    """What one resource's search endpoint matches on: Stripe's query fields for it."""

    listing: Listing
    docs_name: str  # "customers", as in Stripe's docs anchor #query-fields-for-customers
    fields: Mapping[str, SearchField] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.listing.url}/search"

    def filter(self, query: str) -> Q:
        clauses, connective = parse_query(query)
        combined = Q()
        for clause in clauses:
            condition = self._condition(clause)
            if clause.negated:
                condition = ~condition
            combined = combined & condition if connective == "and" else combined | condition
        return combined

    def _condition(self, clause: Clause) -> Q:
        kind = self.fields.get(clause.field)
        if kind is None or (clause.key is not None and not kind.takes_key):
            raise SearchError(
                f"Invalid search query: {clause.name} (position {clause.position}) is not a "
                f"searchable field for {self.listing.object}. Fields: "
                f"{', '.join(sorted(self.fields))}; see "
                f"https://docs.stripe.com/search#query-fields-for-{self.docs_name}."
            )
        return kind.condition(clause)

    def page(self, queryset: models.QuerySet, params: Params) -> dict[str, Any]:
        query = params.string("query", required=True, max_length=MAX_QUERY_LENGTH) or ""
        limit = params.integer("limit", minimum=1, maximum=100) or 10
        page = params.string("page")
        rows = queryset.filter(self.filter(query)).order_by("-pk")
        if page:
            rows = rows.filter(pk__lt=_read_page(page, f"{self.url} {query}"))
        found = list(rows[: limit + 1])
        has_more = len(found) > limit
        found = found[:limit]
        # A ListPage, so `expand[]=data.customer` works as on the resource's list.
        return ListPage(
            {
                "object": "search_result",
                "data": [self.listing.serialize(item) for item in found],
                "has_more": has_more,
                "next_page": (
                    _page_token(found[-1].pk, f"{self.url} {query}") if has_more else None
                ),
                "url": self.url,
            },
            item_type=self.listing.object,
        )


_PAGE_SALT = "billing_site.api.search.page"


def _query_digest(query: str) -> str:
    # The query as searched on one resource: a customers page never continues an invoices one.
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def _page_token(last_pk: int, query: str) -> str:
    """Opaque and signed: a client can't forge a position, nor reuse it with another query."""
    return signing.dumps([last_pk, _query_digest(query)], salt=_PAGE_SALT, compress=True)


def _read_page(token: str, query: str) -> int:
    try:
        last_pk, digest = signing.loads(token, salt=_PAGE_SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise SearchError(
            "Invalid page: use the next_page value of a previous search response.", param="page"
        ) from None
    if digest != _query_digest(query):
        raise SearchError(
            "Invalid page: this next_page belongs to a different query; send the same query "
            "with it.",
            param="page",
        )
    return int(last_pk)


class SearchEndpoint:
    """`GET .../search`, mixed into an `ApiView` (`class CustomerSearch(SearchEndpoint,
    ApiView)`) that sets `resource` and `search`; `queryset()` is what the resource's list
    endpoint lists (deleted customers are not searched)."""

    http_method_names = ["get", "head"]
    search: ClassVar[Search]

    def queryset(self) -> models.QuerySet:
        raise NotImplementedError

    def get(self, request, params: Params) -> dict[str, Any]:
        return self.search.page(self.queryset(), params)
