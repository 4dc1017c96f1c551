"""Realistic fake people: names (latin-1 safe, with accents), handles and emails on reserved domains."""

from __future__ import annotations

import random

# Every name must encode as latin-1: one accounts day is written in latin-1.
FIRST = (
    "Liam",
    "Olivia",
    "Noah",
    "Emma",
    "Mateo",
    "Sofía",
    "Lucas",
    "Chloé",
    "Jonas",
    "Zoë",
    "André",
    "Inés",
    "Björn",
    "Renée",
    "Joaquín",
    "Maëlle",
    "Søren",
    "Amélie",
    "Ava",
    "Ethan",
    "Mia",
    "Aarav",
    "Priya",
    "Kenji",
    "Yuki",
    "Fatima",
    "Omar",
    "Chiara",
    "Luca",
    "Jürgen",
    "Hana",
    "Diego",
    "Nadia",
)
LAST = (
    "Smith",
    "García",
    "Müller",
    "Dubois",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Johansson",
    "O'Brien",
    "Fernández",
    "Silva",
    "Andersen",
    "Moreau",
    "Schäfer",
    "Patel",
    "Tanaka",
    "Okafor",
    "Haddad",
    "Lefèvre",
    "Núñez",
    "Brown",
    "Wilson",
    "Costa",
    "Ødegaard",
    "Jensen",
    "Martín",
    "Kim",
    "Lopez",
)
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_PLAIN = str.maketrans("áàâäãåçéèêëíìîïñóòôöøúùûüýÿßæ", "aaaaaaceeeeiiiinooooouuuuyysa", "'")


def full_name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def ascii_slug(name: str) -> str:
    return name.lower().translate(_PLAIN)


def handle(rng: random.Random, name: str, n: int) -> str:
    # The number keeps handles unique without remembering the ones already issued.
    first, last = ascii_slug(name).split(" ", 1)
    return rng.choice((f"{first}{last}", f"{first}_{last}", f"the{first}", f"{last}.{first}")) + str(n)


def email(rng: random.Random, name: str, n: int) -> str:
    first, last = ascii_slug(name).split(" ", 1)
    return f"{first}.{last}{n}@{rng.choice(_DOMAINS)}"
