"""The BPU prices certificates, tokens, training and a degressive on-site delivery fee."""

from __future__ import annotations

import os
import tomllib
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from itertools import count

import pytest
from babel.numbers import format_currency

from ra.pricing import (
    BPUError,
    DeliveredCertificate,
    InvoiceLine,
    PriceSchedule,
    format_euros,
    invoice_lines,
    invoice_totals,
    training_lines,
)

DEFAULT_TEXT = resources.files("ra").joinpath("bpu.toml").read_text(encoding="utf-8")
MAIRIE = "12, rue de la Mairie, 22000 Saint-Brieuc"
ORDERED = date(2025, 3, 3)
DELIVERED = date(2025, 3, 20)
_refs = count(1)


@pytest.fixture(scope="module")
def bpu() -> PriceSchedule:
    return PriceSchedule.load()


def delivery(**changes: object) -> DeliveredCertificate:
    values: dict[str, object] = dict(
        order_ref=f"CMD-{next(_refs):05d}",
        entity_id="commune-plerin",
        entity_name="Commune de Plérin",
        profile="rgs2-entite-double",
        new_token=False,
        on_site=True,
        site_address=MAIRIE,
        delivery_date=DELIVERED,
        order_date=ORDERED,
    )
    values.update(changes)
    return DeliveredCertificate(**values)  # type: ignore[arg-type]


def fee_lines(lines: list[InvoiceLine]) -> list[InvoiceLine]:
    return [line for line in lines if line.label_fr.startswith("Frais de remise sur site")]


def default_data() -> dict:
    return tomllib.loads(DEFAULT_TEXT, parse_float=Decimal)


def bpu_error(data: dict) -> str:
    with pytest.raises(BPUError) as caught:
        PriceSchedule.from_mapping(data, source="bpu.toml")
    return str(caught.value)


# --- the default schedule ---------------------------------------------------------------------


def test_default_bpu_loads(bpu):
    assert bpu.vat_percent == 20
    assert set(bpu.certificates) >= {
        "rgs2-entite-double",
        "rgs2-entite-authentification",
        "rgs2-entite-signature",
    }
    assert [t.per_certificate_cents for t in bpu.on_site_tiers] == [15000, 12000, 10000, 9000]


@pytest.mark.parametrize(
    ("group_size", "per_certificate"),
    [(1, 15000), (2, 12000), (3, 12000), (4, 10000), (9, 10000), (10, 9000), (250, 9000)],
)
def test_tier_chosen_by_group_size(bpu, group_size, per_certificate):
    assert bpu.on_site_fee_per_certificate(group_size) == per_certificate


def test_default_group_total_never_decreases_as_the_group_grows(bpu):
    totals = [n * bpu.on_site_fee_per_certificate(n) for n in range(1, 30)]
    assert totals == sorted(totals)


# --- certificates, tokens ---------------------------------------------------------------------


def test_certificate_priced_by_profile(bpu):
    lines = invoice_lines(bpu, [
        delivery(profile="rgs2-entite-double", on_site=False),
        delivery(profile="rgs2-entite-double", on_site=False),
        delivery(profile="rgs2-entite-signature", on_site=False),
    ])["commune-plerin"]
    assert [(line.quantity, line.unit_cents, line.total_cents) for line in lines] == [
        (2, 12000, 24000),
        (1, 9000, 9000),
    ]
    assert lines[0].label_fr.startswith("Certificat RGS** entité, double usage")


def test_new_token_charged_reused_token_not(bpu):
    lines = invoice_lines(bpu, [
        delivery(new_token=True, on_site=False),
        delivery(new_token=False, on_site=False),
    ])["commune-plerin"]
    (token,) = [line for line in lines if line.label_fr.startswith("Support")]
    assert (token.quantity, token.total_cents) == (1, 4500)


def test_unknown_profile_refused(bpu):
    with pytest.raises(BPUError, match="'certificate.rgs2-individu'"):
        invoice_lines(bpu, [delivery(profile="rgs2-individu")])


def test_delivery_at_cci_has_no_on_site_fee(bpu):
    lines = invoice_lines(bpu, [delivery(on_site=False, site_address="CCI, Saint-Brieuc")])
    assert fee_lines(lines["commune-plerin"]) == []


# --- the on-site fee --------------------------------------------------------------------------


def test_single_on_site_certificate_pays_first_tier(bpu):
    (fee,) = fee_lines(invoice_lines(bpu, [delivery()])["commune-plerin"])
    assert (fee.quantity, fee.unit_cents, fee.total_cents) == (1, 15000, 15000)


def test_degressive_fee_same_address_same_day(bpu):
    (fee,) = fee_lines(invoice_lines(bpu, [delivery(), delivery(), delivery()])["commune-plerin"])
    assert (fee.quantity, fee.unit_cents, fee.total_cents) == (3, 12000, 36000)
    assert "groupe de 3 certificats" in fee.label_fr and "20/03/2025" in fee.label_fr


def test_fee_not_degressive_when_orders_placed_on_different_days(bpu):
    lines = invoice_lines(bpu, [
        delivery(order_date=date(2025, 3, 3)),
        delivery(order_date=date(2025, 3, 4)),
        delivery(order_date=date(2025, 3, 5)),
    ])["commune-plerin"]
    fees = fee_lines(lines)
    assert [(f.quantity, f.unit_cents) for f in fees] == [(1, 15000)] * 3
    assert sum(f.total_cents for f in fees) == 45000


def test_fee_groups_split_by_order_day(bpu):
    lines = invoice_lines(bpu, [
        delivery(order_date=date(2025, 3, 3)),
        delivery(order_date=date(2025, 3, 3)),
        delivery(order_date=date(2025, 3, 4)),
    ])["commune-plerin"]
    assert [(f.quantity, f.unit_cents) for f in fee_lines(lines)] == [(2, 12000), (1, 15000)]


def test_fee_not_degressive_on_different_delivery_days(bpu):
    lines = invoice_lines(bpu, [
        delivery(delivery_date=date(2025, 3, 20)),
        delivery(delivery_date=date(2025, 3, 21)),
    ])["commune-plerin"]
    assert [(f.quantity, f.unit_cents) for f in fee_lines(lines)] == [(1, 15000), (1, 15000)]


def test_fee_not_degressive_at_different_addresses(bpu):
    lines = invoice_lines(bpu, [
        delivery(site_address=MAIRIE),
        delivery(site_address="1 place du Marché, 22190 Plérin"),
    ])["commune-plerin"]
    assert [f.unit_cents for f in fee_lines(lines)] == [15000, 15000]


def test_same_address_written_differently_is_one_site(bpu):
    lines = invoice_lines(bpu, [
        delivery(site_address="12, rue de la Mairie, 22000 Saint-Brieuc"),
        delivery(site_address="12 RUE DE LA MAIRIE  22000 SAINT BRIEUC"),
        delivery(site_address="12 rue de la mairie – 22000 Saint-Brièuc."),
    ])["commune-plerin"]
    assert [(f.quantity, f.unit_cents) for f in fee_lines(lines)] == [(3, 12000)]


def test_group_spans_entities_each_pays_its_own_certificates(bpu):
    lines = invoice_lines(bpu, [
        delivery(entity_id="commune-plerin"),
        delivery(entity_id="commune-plerin"),
        delivery(entity_id="ccas-plerin", entity_name="CCAS de Plérin"),
    ])
    assert [(f.quantity, f.unit_cents) for f in fee_lines(lines["commune-plerin"])] == [(2, 12000)]
    assert [(f.quantity, f.unit_cents) for f in fee_lines(lines["ccas-plerin"])] == [(1, 12000)]


# --- VAT and totals ---------------------------------------------------------------------------


def test_lines_carry_ht_and_ttc(bpu):
    (line,) = invoice_lines(bpu, [delivery(on_site=False)])["commune-plerin"]
    assert (line.unit_cents, line.total_cents, line.total_ttc_cents) == (12000, 12000, 14400)


def test_totals_ht_vat_ttc(bpu):
    lines = invoice_lines(bpu, [delivery(new_token=True), delivery()])["commune-plerin"]
    totals = invoice_totals(bpu, lines)
    # 2 × 120 € + 1 token 45 € + 2 × 120 € on-site fee = 525 € HT
    assert (totals.ht_cents, totals.vat_cents, totals.ttc_cents) == (52500, 10500, 63000)


def test_vat_computed_on_entity_total_rounded_half_up():
    data = default_data()
    data["vat_percent"] = Decimal("5.5")
    schedule = PriceSchedule.from_mapping(data)
    lines = [
        InvoiceLine("Article à 0,01 €", 1, 1, 1, schedule.ttc_cents(1)),
        InvoiceLine("Article à 0,09 €", 1, 9, 9, schedule.ttc_cents(9)),
    ]
    # per line: 0,055 and 0,495 cent both round to 0; on the 10-cent total 0,55 rounds up to 1
    assert invoice_totals(schedule, lines).vat_cents == 1


def test_decimal_vat_rate_accepted():
    data = default_data()
    data["vat_percent"] = Decimal("5.5")
    assert PriceSchedule.from_mapping(data).vat_cents(10000) == 550


def test_amounts_are_integer_cents(bpu):
    lines = invoice_lines(bpu, [delivery(new_token=True), delivery()])["commune-plerin"]
    for line in lines:
        amounts = (line.unit_cents, line.total_cents, line.total_ttc_cents)
        assert all(type(amount) is int for amount in amounts)


# --- training ---------------------------------------------------------------------------------


def test_training_priced_per_person(bpu):
    (line,) = training_lines(bpu, 3)
    assert (line.quantity, line.unit_cents, line.total_cents, line.total_ttc_cents) == (
        3, 30000, 90000, 108000,
    )


def test_training_nobody_gives_no_line(bpu):
    assert training_lines(bpu, 0) == []


def test_training_negative_persons_refused(bpu):
    with pytest.raises(ValueError):
        training_lines(bpu, -1)


# --- deliveries are consistent ----------------------------------------------------------------


def test_same_order_twice_refused(bpu):
    with pytest.raises(ValueError, match="CMD-DUP"):
        invoice_lines(bpu, [delivery(order_ref="CMD-DUP"), delivery(order_ref="CMD-DUP")])


def test_delivery_before_order_refused():
    with pytest.raises(ValueError, match="before it was placed"):
        delivery(order_date=date(2025, 3, 21), delivery_date=date(2025, 3, 20))


def test_datetime_instead_of_date_refused():
    """A time of day would split a day's deliveries into groups of one."""
    with pytest.raises(TypeError):
        delivery(delivery_date=datetime(2025, 3, 20, 9, 30))


def test_on_site_delivery_without_address_refused():
    with pytest.raises(ValueError, match="no address"):
        delivery(site_address="  ")


# --- euros ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0,00\u00a0€"),
        (5, "0,05\u00a0€"),
        (15000, "150,00\u00a0€"),
        (123456, "1\u202f234,56\u00a0€"),
        (123456789, "1\u202f234\u202f567,89\u00a0€"),
        (-4500, "-45,00\u00a0€"),
    ],
)
def test_format_euros(cents, text):
    assert format_euros(cents) == text


@pytest.mark.parametrize("cents", [1, 99, 100000, 123456789])
def test_format_euros_matches_babel_french(cents):
    """Same characters as flask-babel's ``format_currency`` in templates (CLDR fr)."""
    assert format_euros(cents) == format_currency(Decimal(cents) / 100, "EUR", locale="fr_FR")


def test_format_euros_refuses_floats():
    with pytest.raises(TypeError):
        format_euros(12.5)  # type: ignore[arg-type]


# --- BPU validation ---------------------------------------------------------------------------


def test_bpu_gap_in_tiers_refused(tmp_path):
    path = tmp_path / "bpu.toml"
    path.write_text(DEFAULT_TEXT.replace("from = 4", "from = 5"), encoding="utf-8")
    with pytest.raises(BPUError) as caught:
        PriceSchedule.load(path)
    assert str(caught.value) == (
        f"{path}: 'on_site_fee.tiers[2].from' is 5 but must be 4 (tiers are contiguous from 1)."
    )


def test_bpu_overlapping_tiers_refused():
    data = default_data()
    data["on_site_fee"]["tiers"][2]["from"] = 3
    assert "'on_site_fee.tiers[2].from' is 3 but must be 4" in bpu_error(data)


def test_bpu_tiers_not_starting_at_1_refused():
    data = default_data()
    del data["on_site_fee"]["tiers"][0]
    assert "'on_site_fee.tiers[0].from' is 2 but must be 1" in bpu_error(data)


def test_bpu_tiers_not_ascending_refused():
    data = default_data()
    tiers = data["on_site_fee"]["tiers"]
    tiers[1], tiers[2] = tiers[2], tiers[1]
    assert "'on_site_fee.tiers[1].from'" in bpu_error(data)


def test_bpu_tier_ending_before_it_starts_refused():
    data = default_data()
    data["on_site_fee"]["tiers"][1]["to"] = 1
    assert "'on_site_fee.tiers[1].to' is 1, below its 'from'" in bpu_error(data)


def test_bpu_last_tier_must_be_open_ended():
    data = default_data()
    data["on_site_fee"]["tiers"][-1]["to"] = 20
    assert "'on_site_fee.tiers[3].to' must be left out" in bpu_error(data)


def test_bpu_only_last_tier_open_ended():
    data = default_data()
    del data["on_site_fee"]["tiers"][1]["to"]
    assert "'on_site_fee.tiers[1].to' is missing" in bpu_error(data)


def test_bpu_increasing_fee_refused():
    data = default_data()
    data["on_site_fee"]["tiers"][2]["per_certificate_cents"] = 13000
    assert "'on_site_fee.tiers[2].per_certificate_cents' is higher" in bpu_error(data)


@pytest.mark.parametrize(
    ("path", "key"),
    [
        (("token", "price_cents"), "token.price_cents"),
        (("certificate", "rgs2-entite-signature", "price_cents"),
         "certificate.rgs2-entite-signature.price_cents"),
        (("on_site_fee", "tiers", 0, "per_certificate_cents"),
         "on_site_fee.tiers[0].per_certificate_cents"),
    ],
)
def test_bpu_negative_amount_refused(path, key):
    data = default_data()
    *parents, last = path
    target = data
    for step in parents:
        target = target[step]
    target[last] = -1
    assert bpu_error(data) == f"bpu.toml: '{key}' must not be negative."


def test_bpu_amount_in_euros_with_decimals_refused():
    data = default_data()
    data["token"]["price_cents"] = Decimal("45.00")
    assert "'token.price_cents' must be a whole number of cents" in bpu_error(data)


@pytest.mark.parametrize(
    "path",
    [
        ("vat_percent",),
        ("token",),
        ("training",),
        ("certificate",),
        ("on_site_fee",),
        ("certificate", "rgs2-entite-double"),
        ("token", "price_cents"),
        ("training", "label"),
        ("on_site_fee", "tiers"),
    ],
)
def test_bpu_missing_item_refused(path):
    data = default_data()
    target = data
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    assert bpu_error(data) == f"bpu.toml: '{'.'.join(path)}' is missing."


def test_bpu_misspelt_key_refused():
    data = default_data()
    data["token"]["price_cent"] = data["token"].pop("price_cents")
    assert "'token.price_cent' is not a BPU key" in bpu_error(data)


def test_bpu_invalid_toml_refused(tmp_path):
    path = tmp_path / "bpu.toml"
    path.write_text("vat_percent = \n", encoding="utf-8")
    with pytest.raises(BPUError, match="not valid TOML"):
        PriceSchedule.load(path)


def test_bpu_missing_file_refused(tmp_path):
    with pytest.raises(BPUError, match="cannot be read"):
        PriceSchedule.load(tmp_path / "absent.toml")


def test_bpu_loaded_from_a_path_equals_the_default(tmp_path, bpu):
    path = tmp_path / "copy.toml"
    path.write_text(DEFAULT_TEXT, encoding="utf-8")
    assert PriceSchedule.load(path) == bpu


def test_the_current_bpu_is_read_again_only_when_its_file_changes(tmp_path, bpu):
    path = tmp_path / "bpu.toml"
    path.write_text(DEFAULT_TEXT, encoding="utf-8")
    first = PriceSchedule.current(path)
    assert first == bpu and PriceSchedule.current(path) is first  # unchanged: not parsed again
    assert PriceSchedule.current() is PriceSchedule.current() and PriceSchedule.current() == bpu
    changed = DEFAULT_TEXT.replace("vat_percent = 20", "vat_percent = 10")
    assert changed != DEFAULT_TEXT
    path.write_text(changed, encoding="utf-8")
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    edited = PriceSchedule.current(path)
    assert edited is not first and edited.vat_percent == 10
    path.write_text("vat_percent = \n", encoding="utf-8")
    with pytest.raises(BPUError, match="not valid TOML"):
        PriceSchedule.current(path)
    path.unlink()
    with pytest.raises(BPUError, match="cannot be read"):
        PriceSchedule.current(path)
