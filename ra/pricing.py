"""The BPU (price schedule of the purchasing agreement) and the invoice lines it prices.

Amounts are integer cents, excluding VAT (HT) unless the name says TTC. The schedule is read
from TOML (``ra/bpu.toml`` by default; its comments document every key). The on-site delivery
fee is degressive: certificates handed over at the same address on the same day, from orders
placed on the same day, form one group whose size picks the per-certificate tier.
"""

from __future__ import annotations

import os
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

__all__ = [
    "BPUError",
    "DeliveredCertificate",
    "FeeTier",
    "InvoiceLine",
    "InvoiceTotals",
    "PriceSchedule",
    "PricedItem",
    "REQUIRED_PROFILES",
    "format_euros",
    "invoice_lines",
    "invoice_totals",
    "normalise_address",
    "training_lines",
]

REQUIRED_PROFILES = (
    "rgs2-entite-double",
    "rgs2-entite-authentification",
    "rgs2-entite-signature",
)
_NARROW_NBSP = "\u202f"  # thousands separator (CLDR fr, as Babel formats)
_NBSP = "\u00a0"  # before the currency sign (CLDR fr)


class BPUError(ValueError):
    """The price schedule is unreadable or inconsistent, or lacks a price that is needed."""


@dataclass(frozen=True)
class PricedItem:
    label_fr: str
    price_cents: int


@dataclass(frozen=True)
class FeeTier:
    """Group sizes ``first``..``last`` (inclusive; ``last`` None: no upper bound)."""

    first: int
    last: int | None
    per_certificate_cents: int

    def covers(self, group_size: int) -> bool:
        return self.first <= group_size and (self.last is None or group_size <= self.last)


@dataclass(frozen=True)
class PriceSchedule:
    vat_percent: Decimal
    certificates: Mapping[str, PricedItem]
    token: PricedItem
    training: PricedItem
    on_site_label_fr: str
    on_site_tiers: tuple[FeeTier, ...]
    source: str = field(default="<BPU>", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "certificates", MappingProxyType(dict(self.certificates)))
        object.__setattr__(self, "on_site_tiers", tuple(self.on_site_tiers))
        if not Decimal(0) <= self.vat_percent <= Decimal(100):
            self._fail("vat_percent", "must be between 0 and 100")
        for profile in REQUIRED_PROFILES:
            if profile not in self.certificates:
                self._fail(f"certificate.{profile}", "is missing")
        _check_tiers(self)

    @classmethod
    def load(cls, path: Path | str | None = None) -> PriceSchedule:
        """Read and validate a BPU file; without a path, the default ``ra/bpu.toml``."""
        if path is None:
            resource = resources.files("ra").joinpath("bpu.toml")
            text, source = resource.read_text(encoding="utf-8"), "ra/bpu.toml"
        else:
            try:
                text, source = Path(path).read_text(encoding="utf-8"), str(path)
            except OSError as exc:
                raise BPUError(f"{path}: the BPU file cannot be read ({exc.strerror}).") from exc
        try:
            data = tomllib.loads(text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            raise BPUError(f"{source}: the BPU file is not valid TOML ({exc}).") from exc
        return cls.from_mapping(data, source=source)

    @classmethod
    def current(cls, path: Path | str | None = None) -> PriceSchedule:
        """``load(path)``, read again only when the file changed (its modification time or size).

        Every session page shows an invoice: the BPU is not parsed and checked on each request,
        yet an edited BPU applies without a restart."""
        key = None if path is None else str(path)
        stamp = None
        if path is not None:
            try:
                status = os.stat(path)
            except OSError:
                return cls.load(path)  # the error names the file
            stamp = (status.st_mtime_ns, status.st_size)
        found = _CURRENT.get(key)
        if found is not None and found[0] == stamp:
            return found[1]
        schedule = cls.load(path)
        _CURRENT[key] = (stamp, schedule)
        return schedule

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "<BPU>") -> PriceSchedule:
        """Build from parsed TOML; every error names the offending key."""
        reader = _Reader(source)
        reader.keys(data, "", {"vat_percent", "certificate", "token", "training", "on_site_fee"})
        certificates = reader.table(data, "certificate")
        fee = reader.table(data, "on_site_fee")
        reader.keys(fee, "on_site_fee", {"label", "tiers"})
        raw_tiers = reader.get(fee, "on_site_fee", "tiers")
        if not isinstance(raw_tiers, list) or not raw_tiers:
            reader.fail("on_site_fee.tiers", "must be a non-empty array of tables")
        return cls(
            vat_percent=reader.number(data, "", "vat_percent"),
            certificates={
                profile: reader.item(certificates, "certificate", profile)
                for profile in certificates
            },
            token=reader.item(data, "", "token"),
            training=reader.item(data, "", "training"),
            on_site_label_fr=reader.text(fee, "on_site_fee", "label"),
            on_site_tiers=tuple(
                reader.tier(tier, f"on_site_fee.tiers[{i}]") for i, tier in enumerate(raw_tiers)
            ),
            source=source,
        )

    def certificate(self, profile: str) -> PricedItem:
        try:
            return self.certificates[profile]
        except KeyError:
            self._fail(f"certificate.{profile}", "is missing: this profile has no price")

    def on_site_fee_per_certificate(self, group_size: int) -> int:
        """The per-certificate fee for a group of ``group_size`` certificates."""
        if group_size < 1:
            raise ValueError("A delivery group holds at least one certificate.")
        return next(t for t in self.on_site_tiers if t.covers(group_size)).per_certificate_cents

    def vat_cents(self, ht_cents: int) -> int:
        """VAT on an HT amount, rounded half up to the cent."""
        vat = Decimal(ht_cents) * self.vat_percent / Decimal(100)
        return int(vat.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def ttc_cents(self, ht_cents: int) -> int:
        return ht_cents + self.vat_cents(ht_cents)

    def _fail(self, key: str, problem: str) -> NoReturn:
        raise BPUError(f"{self.source}: '{key}' {problem}.")


_CURRENT: dict[str | None, tuple[tuple[int, int] | None, PriceSchedule]] = {}  # PriceSchedule.current

def _check_tiers(schedule: PriceSchedule) -> None:
    """Tiers contiguous from 1, ascending, open-ended last, amounts never increasing."""
    tiers = schedule.on_site_tiers
    if not tiers:
        schedule._fail("on_site_fee.tiers", "must hold at least one tier")
    expected_first = 1
    for i, tier in enumerate(tiers):
        key = f"on_site_fee.tiers[{i}]"
        if tier.first != expected_first:
            problem = f"is {tier.first} but must be {expected_first} (tiers are contiguous from 1)"
            schedule._fail(f"{key}.from", problem)
        if tier.per_certificate_cents < 0:
            schedule._fail(f"{key}.per_certificate_cents", "must not be negative")
        if i and tier.per_certificate_cents > tiers[i - 1].per_certificate_cents:
            problem = "is higher than the previous tier's (the fee is degressive)"
            schedule._fail(f"{key}.per_certificate_cents", problem)
        if tier.last is None:
            if i != len(tiers) - 1:
                schedule._fail(f"{key}.to", "is missing (only the last tier is open-ended)")
            return
        if tier.last < tier.first:
            schedule._fail(f"{key}.to", f"is {tier.last}, below its 'from' ({tier.first})")
        expected_first = tier.last + 1
    last_key = f"on_site_fee.tiers[{len(tiers) - 1}].to"
    schedule._fail(last_key, "must be left out (the last tier is open-ended)")


class _Reader:
    """Typed access to parsed TOML, raising ``BPUError`` that names the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> NoReturn:
        raise BPUError(f"{self.source}: '{key}' {problem}.")

    def get(self, table: Mapping[str, Any], prefix: str, name: str) -> Any:
        key = f"{prefix}.{name}" if prefix else name
        if name not in table:
            self.fail(key, "is missing")
        return table[name]

    def keys(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for name in table:
            if name not in allowed:
                self.fail(f"{prefix}.{name}" if prefix else name, "is not a BPU key")

    def table(self, table: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        value = self.get(table, "", name)
        if not isinstance(value, dict):
            self.fail(name, "must be a table")
        return value

    def cents(self, table: Mapping[str, Any], prefix: str, name: str) -> int:
        return self._whole(table, prefix, name, "a whole number of cents")

    def count(self, table: Mapping[str, Any], prefix: str, name: str) -> int:
        return self._whole(table, prefix, name, "a whole number")

    def _whole(self, table: Mapping[str, Any], prefix: str, name: str, what: str) -> int:
        value = self.get(table, prefix, name)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{prefix}.{name}", f"must be {what}")
        if value < 0:
            self.fail(f"{prefix}.{name}", "must not be negative")
        return value

    def number(self, table: Mapping[str, Any], prefix: str, name: str) -> Decimal:
        value = self.get(table, prefix, name)
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            self.fail(f"{prefix}.{name}" if prefix else name, "must be a number")
        return Decimal(value)

    def text(self, table: Mapping[str, Any], prefix: str, name: str) -> str:
        value = self.get(table, prefix, name)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{prefix}.{name}", "must be a non-empty string")
        return value

    def item(self, table: Mapping[str, Any], prefix: str, name: str) -> PricedItem:
        value = self.get(table, prefix, name)
        key = f"{prefix}.{name}" if prefix else name
        if not isinstance(value, dict):
            self.fail(key, "must be a table with 'label' and 'price_cents'")
        self.keys(value, key, {"label", "price_cents"})
        return PricedItem(self.text(value, key, "label"), self.cents(value, key, "price_cents"))

    def tier(self, value: Any, key: str) -> FeeTier:
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        self.keys(value, key, {"from", "to", "per_certificate_cents"})
        first = self.count(value, key, "from")
        last = self.count(value, key, "to") if "to" in value else None
        return FeeTier(first, last, self.cents(value, key, "per_certificate_cents"))


# --- deliveries and invoice lines -------------------------------------------------------------


@dataclass(frozen=True)
class DeliveredCertificate:
    """One certificate handed over, as the invoice needs it (one order, one certificate)."""

    order_ref: str
    entity_id: Hashable
    entity_name: str
    profile: str
    new_token: bool
    on_site: bool
    site_address: str | None
    delivery_date: date
    order_date: date

    def __post_init__(self) -> None:
        for name in ("delivery_date", "order_date"):
            value = getattr(self, name)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise TypeError(f"{name} must be a date, not a datetime or anything else.")
        if self.delivery_date < self.order_date:
            raise ValueError(f"Order {self.order_ref} is delivered before it was placed.")
        if self.on_site and not (self.site_address and self.site_address.strip()):
            raise ValueError(f"Order {self.order_ref} is delivered on site but has no address.")


@dataclass(frozen=True)
class InvoiceLine:
    """``unit_cents`` and ``total_cents`` are HT; ``total_ttc_cents`` adds the VAT."""

    label_fr: str
    quantity: int
    unit_cents: int
    total_cents: int
    total_ttc_cents: int

    def __post_init__(self) -> None:
        if self.quantity < 1 or self.total_cents != self.quantity * self.unit_cents:
            raise ValueError("An invoice line's total must be its quantity times its unit price.")


@dataclass(frozen=True)
class InvoiceTotals:
    ht_cents: int
    vat_cents: int
    ttc_cents: int


def normalise_address(address: str) -> str:
    """Compare addresses loosely: no accents, no case, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFKD", address)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join(re.findall(r"[^\W_]+", bare))


def invoice_lines(
    schedule: PriceSchedule, deliveries: Iterable[DeliveredCertificate]
) -> dict[Hashable, list[InvoiceLine]]:
    """Invoice lines per entity id: certificates by profile, new tokens, on-site fees.

    On-site certificates are grouped by (normalised site address, delivery date, order date);
    the group's size picks the fee tier, and each entity pays it for its own certificates.
    """
    deliveries = list(deliveries)
    seen: set[str] = set()
    for delivery in deliveries:
        if delivery.order_ref in seen:
            raise ValueError(f"Order {delivery.order_ref} appears twice in the deliveries.")
        seen.add(delivery.order_ref)
    groups: dict[tuple[str, date, date], list[DeliveredCertificate]] = {}
    for delivery in deliveries:
        if delivery.on_site:
            site = normalise_address(delivery.site_address or "")
            groups.setdefault((site, delivery.delivery_date, delivery.order_date), []).append(
                delivery
            )

    lines: dict[Hashable, list[InvoiceLine]] = {}
    for entity_id in dict.fromkeys(d.entity_id for d in deliveries):
        own = [d for d in deliveries if d.entity_id == entity_id]
        lines[entity_id] = [
            *_certificate_lines(schedule, own),
            *_token_lines(schedule, own),
            *_fee_lines(schedule, entity_id, groups),
        ]
    return lines


def training_lines(schedule: PriceSchedule, persons: int) -> list[InvoiceLine]:
    """The training line for ``persons`` people (no line for nobody)."""
    if isinstance(persons, bool) or not isinstance(persons, int) or persons < 0:
        raise ValueError("The number of persons trained must be a non-negative whole number.")
    if not persons:
        return []
    return [_line(schedule, schedule.training.label_fr, persons, schedule.training.price_cents)]


def invoice_totals(schedule: PriceSchedule, lines: Iterable[InvoiceLine]) -> InvoiceTotals:
    """Total HT, VAT computed once on that total (rounded half up), total TTC."""
    ht = sum(line.total_cents for line in lines)
    vat = schedule.vat_cents(ht)
    return InvoiceTotals(ht_cents=ht, vat_cents=vat, ttc_cents=ht + vat)


def format_euros(cents: int) -> str:
    """12345678 → '123 456,78 €' (CLDR French: U+202F between thousands, U+00A0 before €)."""
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise TypeError("Amounts are whole numbers of cents.")
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    grouped = f"{euros:,}".replace(",", _NARROW_NBSP)
    return f"{sign}{grouped},{rest:02d}{_NBSP}€"


def _certificate_lines(
    schedule: PriceSchedule, own: list[DeliveredCertificate]
) -> list[InvoiceLine]:
    counts = Counter(d.profile for d in own)
    for profile in counts:
        schedule.certificate(profile)  # a profile without a price raises BPUError naming it
    lines = []
    for profile in schedule.certificates:  # the BPU's order
        if profile in counts:
            item = schedule.certificates[profile]
            lines.append(_line(schedule, item.label_fr, counts[profile], item.price_cents))
    return lines


def _token_lines(schedule: PriceSchedule, own: list[DeliveredCertificate]) -> list[InvoiceLine]:
    tokens = sum(1 for d in own if d.new_token)
    if not tokens:
        return []
    return [_line(schedule, schedule.token.label_fr, tokens, schedule.token.price_cents)]


def _fee_lines(
    schedule: PriceSchedule,
    entity_id: Hashable,
    groups: Mapping[tuple[str, date, date], list[DeliveredCertificate]],
) -> list[InvoiceLine]:
    lines = []
    for key in sorted(groups, key=lambda k: (k[1], k[0], k[2])):
        group = groups[key]
        mine = sum(1 for d in group if d.entity_id == entity_id)
        if not mine:
            continue
        first, plural = group[0], "s" if len(group) > 1 else ""
        address = " ".join((first.site_address or "").split())
        label = (
            f"{schedule.on_site_label_fr} — {address}, remise du {first.delivery_date:%d/%m/%Y} "
            f"(commande{plural} du {first.order_date:%d/%m/%Y}) : groupe de {len(group)} "
            f"certificat{plural}"
        )
        unit = schedule.on_site_fee_per_certificate(len(group))
        lines.append(_line(schedule, label, mine, unit))
    return lines


def _line(schedule: PriceSchedule, label: str, quantity: int, unit_cents: int) -> InvoiceLine:
    total = quantity * unit_cents
    return InvoiceLine(label, quantity, unit_cents, total, schedule.ttc_cents(total))
