"""The holder's PIN policy at the station: what it refuses, and that it never repeats the PIN."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from ra.station.pin import PinPolicy, is_sequence, prompt_new_pin


@pytest.mark.parametrize("pin", ["Kw7-pin9", "240871", "tRuc!2024", "a1b2c3d4", "13579135", "1234567890123455"])
def test_acceptable_pins(pin: str) -> None:
    assert PinPolicy().problem(pin) is None


@pytest.mark.parametrize(("pin", "why"), [
    ("12345", "de 6 à 16"),
    ("12345678901234567", "de 6 à 16"),
    ("000000", "un seul caractère"),
    ("aaaaaaaa", "un seul caractère"),
    ("123456", "suite"),
    ("654321", "suite"),
    ("789012", "suite"),
    ("abcdef", "suite"),
    ("FEDCBA", "suite"),
    ("mot de passe", "lettres sans accent"),
    ("pàsswörd", "lettres sans accent"),
])
def test_refused_pins_say_why_without_the_pin(pin: str, why: str) -> None:
    problem = PinPolicy().problem(pin)
    assert problem is not None and why in problem
    assert pin not in problem


def test_digits_only_tokens() -> None:
    assert "chiffres" in (PinPolicy(digits_only=True).problem("Kw7-pin9") or "")
    assert PinPolicy(digits_only=True).problem("240871") is None


def test_a_policy_below_six_characters_is_refused() -> None:
    with pytest.raises(ValueError):
        PinPolicy(min_length=4)


def test_sequences() -> None:
    assert is_sequence("0123456789") and is_sequence("9876543210") and is_sequence("xyz")
    assert not is_sequence("124578") and not is_sequence("abcdeg") and not is_sequence("a")


def test_the_prompt_asks_twice_hidden_and_again_after_a_refusal() -> None:
    @click.command()
    def ask() -> None:
        pin = prompt_new_pin(PinPolicy())
        click.echo(f"longueur {len(pin)}")

    result = CliRunner().invoke(ask, input="123456\n123456\nKw7-pin9\nKw7-pinX\nKw7-pin9\nKw7-pin9\n")
    assert result.exit_code == 0, result.output
    assert "suite" in result.output and "longueur 8" in result.output
    assert "123456" not in result.output and "Kw7-pin9" not in result.output  # hidden, never echoed
