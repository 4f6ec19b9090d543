"""The rating engine: from a price's terms and a quantity to an exact amount.

Plain values in, plain values out: no ORM, no clock, no Django. Amounts are ``Decimal``
minor units (cents for USD) and are never rounded here; the invoice line rounds once,
with :func:`catalog.money.round_to_minor_unit`, after credits and the like are applied.

The semantics are Stripe Billing's:

* ``per_unit``: quantity x ``unit_amount``.
* ``per_unit`` with ``transform_quantity`` (package pricing): the quantity is divided by
  ``divide_by`` and rounded to a whole number of packages, up or down, before pricing.
* ``tiered`` / ``volume``: the total quantity picks one tier, and every unit is charged at
  that tier's rate, plus that tier's flat amount.
* ``tiered`` / ``graduated``: each band ``(previous up_to, up_to]`` is charged at its own
  rate, plus the flat amount of every tier the quantity reaches into.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from decimal import localcontext as _localcontext
from itertools import pairwise

from catalog.money import exact_decimal

__all__ = [
    "BILLING_SCHEMES",
    "ROUNDING_MODES",
    "TIERS_MODES",
    "PriceTerms",
    "Rating",
    "Tier",
    "TierCharge",
    "TransformQuantity",
    "rate",
]

BILLING_SCHEMES = ("per_unit", "tiered")
TIERS_MODES = ("graduated", "volume")
ROUNDING_MODES = ("up", "down")

_ZERO = Decimal(0)

# The default decimal context keeps 28 significant digits and rounds silently past that.
# A 15-digit meter total times a unit amount with 12 decimals can need more, and the
# engine promises exact amounts. So compute with ample precision and trap Inexact: the
# result is exact, or rating fails loudly instead of being quietly off.
_EXACT = Context(prec=80, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])


def _non_negative(value: Decimal | int, what: str) -> Decimal:
    value = exact_decimal(value, what)
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {value}.")
    return value


@dataclass(frozen=True)
class Tier:
    """One row of a tiered price. Amounts are minor units (cents), not major units."""

    # Inclusive upper bound in units; None is Stripe's "inf".
    up_to: Decimal | None
    # Charged per unit in the band (graduated) or per unit of the total (volume).
    unit_amount: Decimal = _ZERO
    # Charged once for the tier, however many units fall in it.
    flat_amount: Decimal = _ZERO

    def __post_init__(self) -> None:
        # Accept ints for convenience but store Decimals, so breakdowns have one type.
        if self.up_to is not None:
            up_to = exact_decimal(self.up_to, "Tier up_to")
            if up_to <= 0:
                raise ValueError(f"Tier up_to must be greater than 0, got {up_to}.")
            object.__setattr__(self, "up_to", up_to)
        object.__setattr__(self, "unit_amount", _non_negative(self.unit_amount, "Tier unit_amount"))
        object.__setattr__(self, "flat_amount", _non_negative(self.flat_amount, "Tier flat_amount"))


@dataclass(frozen=True)
class TransformQuantity:
    """Package pricing: bill whole packages of ``divide_by`` units."""

    divide_by: int
    # "up" charges a partial package as a whole one; "down" gives it away.
    round: str

    def __post_init__(self) -> None:
        if isinstance(self.divide_by, bool) or not isinstance(self.divide_by, int):
            raise TypeError(f"divide_by must be an int, not {type(self.divide_by).__name__}.")
        if self.divide_by <= 0:
            raise ValueError(f"divide_by must be greater than 0, got {self.divide_by}.")
        if self.round not in ROUNDING_MODES:
            raise ValueError(f"round must be 'up' or 'down', got {self.round!r}.")


@dataclass(frozen=True)
class PriceTerms:
    """How a price turns a quantity into an amount.

    Construction checks the structural rules, so a ``PriceTerms`` that exists can always
    be rated. User-facing validation, with Stripe parameter names in the errors, lives in
    :func:`catalog.terms.build_price_terms`; this is the safety net for terms built
    elsewhere, such as from database rows.
    """

    billing_scheme: str
    # Minor units per (billable) unit; per_unit prices only.
    unit_amount: Decimal | None = None
    tiers_mode: str | None = None
    tiers: tuple[Tier, ...] = ()
    transform_quantity: TransformQuantity | None = None

    def __post_init__(self) -> None:
        if self.billing_scheme == "per_unit":
            self._check_per_unit()
        elif self.billing_scheme == "tiered":
            self._check_tiered()
        else:
            raise ValueError(
                f"billing_scheme must be 'per_unit' or 'tiered', got {self.billing_scheme!r}."
            )

    def _check_per_unit(self) -> None:
        if self.unit_amount is None:
            raise ValueError("A per_unit price needs a unit_amount.")
        object.__setattr__(self, "unit_amount", _non_negative(self.unit_amount, "unit_amount"))
        if self.tiers or self.tiers_mode is not None:
            raise ValueError("A per_unit price cannot have tiers or a tiers_mode.")

    def _check_tiered(self) -> None:
        if self.tiers_mode not in TIERS_MODES:
            raise ValueError(
                f"tiers_mode must be 'graduated' or 'volume', got {self.tiers_mode!r}."
            )
        if self.unit_amount is not None:
            raise ValueError("A tiered price takes its unit amounts from its tiers.")
        if self.transform_quantity is not None:
            raise ValueError("A tiered price cannot have transform_quantity.")
        # A list would make the "frozen" terms mutable through the back door.
        object.__setattr__(self, "tiers", tuple(self.tiers))
        if not self.tiers:
            raise ValueError("A tiered price needs at least one tier.")
        if self.tiers[-1].up_to is not None:
            raise ValueError("The last tier must have up_to=None (inf).")
        bounds = [tier.up_to for tier in self.tiers[:-1]]
        if any(bound is None for bound in bounds):
            raise ValueError("Only the last tier can have up_to=None (inf).")
        if any(
            low >= high for low, high in pairwise(bounds) if low is not None and high is not None
        ):
            raise ValueError(f"Tier up_to values must be strictly increasing, got {bounds}.")


@dataclass(frozen=True)
class TierCharge:
    """One row of a rating's breakdown, as shown on an invoice line's detail."""

    # 1-based, as staff count tiers; None for per_unit pricing.
    tier: int | None
    # Units charged in this row: band units (graduated), all units (volume), or packages.
    units: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    # units x unit_amount + flat_amount, exact and unrounded.
    subtotal: Decimal


@dataclass(frozen=True)
class Rating:
    quantity: Decimal
    # Packages after transform_quantity; equal to quantity otherwise.
    billable_quantity: Decimal
    # Exact, unrounded minor units: the invoice line rounds once, later.
    amount: Decimal
    breakdown: tuple[TierCharge, ...]


def rate(terms: PriceTerms, quantity: Decimal | int) -> Rating:
    """Rate ``quantity`` under ``terms``; the amount is exact, unrounded minor units.

    Quantities may be fractional (meter sums can be decimal) but never negative: the
    invoicing layer clamps a negative period total to 0 before rating, so a negative
    quantity here is a bug and raises ``ValueError``.

    A quantity of 0 under tiered pricing, in either mode, falls in the first tier with 0
    units, so the first tier's flat amount is still charged. This is Stripe's behaviour:
    a flat fee on the first tier works as a minimum or platform fee for the period, usage
    or not. Under per_unit pricing, 0 units cost 0.
    """
    quantity = exact_decimal(quantity, "quantity")
    if quantity < 0:
        raise ValueError(
            f"Cannot rate a negative quantity ({quantity}); clamp negative usage to 0 first."
        )
    with _localcontext(_EXACT):
        if terms.billing_scheme == "per_unit":
            return _rate_per_unit(terms, quantity)
        if terms.tiers_mode == "volume":
            return _rate_volume(terms, quantity)
        return _rate_graduated(terms, quantity)


def _charge(tier: int | None, units: Decimal, unit_amount: Decimal, flat: Decimal) -> TierCharge:
    return TierCharge(
        tier=tier,
        units=units,
        unit_amount=unit_amount,
        flat_amount=flat,
        subtotal=units * unit_amount + flat,
    )


def _one_charge(quantity: Decimal, charge: TierCharge) -> Rating:
    """A rating that is one charge (per unit, or the one tier of a volume price)."""
    return Rating(
        quantity=quantity,
        billable_quantity=charge.units,
        amount=charge.subtotal,
        breakdown=(charge,),
    )


def _packages(quantity: Decimal, transform: TransformQuantity) -> Decimal:
    # Floor division and remainder are exact; quantity / divide_by might not be.
    whole, remainder = divmod(quantity, Decimal(transform.divide_by))
    if transform.round == "up" and remainder:
        return whole + 1
    return whole


def _rate_per_unit(terms: PriceTerms, quantity: Decimal) -> Rating:
    assert terms.unit_amount is not None  # guaranteed by PriceTerms
    billable = quantity
    if terms.transform_quantity is not None:
        billable = _packages(quantity, terms.transform_quantity)
    return _one_charge(quantity, _charge(None, billable, terms.unit_amount, _ZERO))


def _rate_volume(terms: PriceTerms, quantity: Decimal) -> Rating:
    # The last tier is inf (guaranteed by PriceTerms), so some tier always matches.
    number, tier = next(
        (number, tier)
        for number, tier in enumerate(terms.tiers, start=1)
        if tier.up_to is None or quantity <= tier.up_to
    )
    return _one_charge(quantity, _charge(number, quantity, tier.unit_amount, tier.flat_amount))


def _rate_graduated(terms: PriceTerms, quantity: Decimal) -> Rating:
    charges: list[TierCharge] = []
    lower = _ZERO
    for number, tier in enumerate(terms.tiers, start=1):
        top = quantity if tier.up_to is None else min(quantity, tier.up_to)
        charges.append(_charge(number, top - lower, tier.unit_amount, tier.flat_amount))
        # A quantity exactly on a bound stays in that tier: up_to is inclusive, so the
        # next tier, and its flat amount, only apply once the quantity goes past it.
        if tier.up_to is None or quantity <= tier.up_to:
            break
        lower = tier.up_to
    return Rating(
        quantity=quantity,
        billable_quantity=quantity,
        amount=sum((charge.subtotal for charge in charges), _ZERO),
        breakdown=tuple(charges),
    )
