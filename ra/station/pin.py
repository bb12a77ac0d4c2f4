"""The holder's PIN: the station's policy and the prompt where the holder types it twice.

The PIN lives only in the station's memory while the token needs it: it is never logged, never
sent to the back-office, never put in a message (the policy says what is wrong, not what was typed).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import click

ALLOWED = frozenset(string.ascii_letters + string.digits + string.punctuation)


@dataclass(frozen=True)
class PinPolicy:
    """Length 6 to 16 by default; digits only for tokens whose PIN pad wants it."""

    min_length: int = 6
    max_length: int = 16
    digits_only: bool = False

    def __post_init__(self) -> None:
        if not 6 <= self.min_length <= self.max_length:
            raise ValueError("La politique de code PIN demande au moins 6 caractères.")

    def problem(self, pin: str) -> str | None:
        """Why this PIN is refused, in French, without quoting it; None if it is acceptable."""
        if not self.min_length <= len(pin) <= self.max_length:
            return f"Le code PIN doit compter de {self.min_length} à {self.max_length} caractères."
        if self.digits_only and not pin.isdigit():
            return "Ce support n'accepte que des chiffres dans le code PIN."
        if not set(pin) <= ALLOWED:
            return "Le code PIN ne peut contenir que des lettres sans accent, des chiffres et de la ponctuation."
        if len(set(pin)) == 1:
            return "Le code PIN ne peut pas répéter un seul caractère."
        if is_sequence(pin):
            return "Le code PIN ne peut pas être une suite de chiffres ou de lettres qui se suivent."
        return None


def _step(a: str, b: str) -> int | None:
    """+1/-1 between neighbours of one ordered alphabet (digits wrap around: 9 → 0), else None."""
    if a.isdigit() and b.isdigit():
        diff = (int(b) - int(a)) % 10
        return {1: 1, 9: -1}.get(diff)
    if a.isalpha() and b.isalpha() and a.isascii() and b.isascii():
        diff = ord(b.lower()) - ord(a.lower())
        return diff if diff in (1, -1) else None
    return None


def is_sequence(pin: str) -> bool:
    """123456, 654321, 789012, abcdef, FEDCBA: every neighbour one step further the same way."""
    steps = {_step(a, b) for a, b in zip(pin, pin[1:])}
    return len(pin) > 1 and len(steps) == 1 and None not in steps


def prompt_new_pin(policy: PinPolicy, *, who: str = "le porteur") -> str:
    """Ask for a new PIN, typed twice and hidden, until it meets the policy."""
    while True:
        pin: str = click.prompt(f"Nouveau code PIN (saisi par {who}, {policy.min_length} à "
                                f"{policy.max_length} caractères)", hide_input=True,
                                confirmation_prompt="Retapez le code PIN")
        reason = policy.problem(pin)
        if reason is None:
            return pin
        click.echo(reason + " Recommencez.", err=True)


def prompt_current_pin(*, who: str = "le porteur") -> str:
    """Ask once for the PIN already set on the token (to finish an interrupted enrolment)."""
    pin: str = click.prompt(f"Code PIN du support (saisi par {who})", hide_input=True)
    return pin
