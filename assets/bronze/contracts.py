"""A source's schema as bronze learns it, and its schema contract.

A schema is a set of (path, JSON type) pairs: the path in SQL/JSON path syntax (`$.media[*].media_type`, a key
that is not a plain identifier quoted: `$."like count"`), so that a path reads straight into
`jsonb_path_query(raw, '<path>')`; the type one of string, number, boolean, object, array, or null. A null is a
missing value, not a type: a field seen as null and then as a string has not changed type.

The known schema of a source (of a network, for posts) is every pair its accepted records carried, kept in
`ledger.source_fields`. Against it, a record breaches the contract with a `new_field` (a path never seen) or a
`type_change` (a path seen with other non-null types). What a breach does is the source's `contract`:

- `evolve`: nothing; the new pairs join the known schema (and `schema_drift` reports them).
- `freeze`: the file fails, nothing of it is loaded, the error names the file, the record and the field.
- `discard_row`: the record goes to quarantine with the breach as its reason.
- `discard_value`: the breaching values leave the record, each to quarantine with its path and reason; the
  rest of the record loads.

A source's first load has nothing to breach: it establishes the schema. A configured field's names are known
from the start, of any type until one is seen, so declaring a field in the source's entry accepts it.

Records share a handful of shapes: each object shape (its keys and their value types, at its path) and each
list shape is judged once and remembered, so the per-record cost is a few tuple builds and lookups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Contract = Literal["evolve", "freeze", "discard_row", "discard_value"]
CONTRACTS: tuple[Contract, ...] = ("evolve", "freeze", "discard_row", "discard_value")
NEW_FIELD = "new_field"
TYPE_CHANGE = "type_change"
# The file-level reason of a load refused by a frozen contract.
SCHEMA_FROZEN = "schema_frozen"

ROOT = "$"
# Paths are followed this many containers deep; a container deeper down counts as its type, its insides untracked
# (a record may nest a thousand levels: the walk must not recurse that far).
MAX_DEPTH = 32
# Shapes remembered per file: objects keyed by data (ids as keys) make every record a new shape, and the memory for
# them stays bounded; past the limit a new shape is judged again each time it comes.
MAX_SHAPES = 10_000
_JSON_TYPES = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_type_of(kind: type) -> str:
    return _JSON_TYPES.get(kind, "string")


def child_path(parent: str, key: str) -> str:
    """The path of `key` inside the object at `parent` (ledger.DDL renders a top-level name the same way)."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}.{json.dumps(key, ensure_ascii=False)}"


def items_path(parent: str) -> str:
    return f"{parent}[*]"


class Pair(NamedTuple):
    """One path with one type, as a record carried it; `field` is the top-level key the path lies under."""

    field: str
    path: str
    json_type: str


class Breach(NamedTuple):
    reason: str  # NEW_FIELD or TYPE_CHANGE
    path: str
    json_type: str
    known: tuple[str, ...]  # the path's known non-null types

    def describe(self) -> str:
        if self.reason == NEW_FIELD:
            return f"new field {self.path} ({self.json_type})"
        return f"{self.path} is {self.json_type}, known as {' or '.join(self.known)}"


@dataclass(frozen=True)
class KnownSchema:
    """path → the types seen there ("null" included); an empty set accepts any type (a configured field)."""

    types: dict[str, frozenset[str]]

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]], configured: Iterable[str]) -> KnownSchema:
        types: dict[str, set[str]] = {child_path(ROOT, name): set() for name in configured}
        for path, kind in pairs:
            types.setdefault(path, set()).add(kind)
        return cls({path: frozenset(kinds) for path, kinds in types.items()})

    def judge(self, path: str, kind: str) -> Breach | None:
        known = self.types.get(path)
        if known is None:
            return Breach(NEW_FIELD, path, kind, ())
        typed = known - {"null"}
        if kind == "null" or not typed or kind in typed:
            return None
        return Breach(TYPE_CHANGE, path, kind, tuple(sorted(typed)))


@dataclass
class Shapes:
    """Walks records: collects every pair they carry (`seen`) and, with a known schema, returns each record's
    breaches of it."""

    known: KnownSchema | None = None
    seen: set[Pair] = field(default_factory=set)
    breached: set[tuple[str, str]] = field(default_factory=set)
    _objects: dict = field(default_factory=dict)
    _lists: dict = field(default_factory=dict)

    def breaches(self, record: dict) -> list[Breach]:
        found: list[Breach] = []
        self._object(record, ROOT, "", 1, found)
        return found

    @property
    def accepted(self) -> set[Pair]:
        """The pairs that reach bronze: every pair seen but the breaching ones (a breach breaches in any record)."""
        return {pair for pair in self.seen if (pair.path, pair.json_type) not in self.breached}

    def _object(self, obj: dict, parent: str, top: str, depth: int, found: list[Breach]) -> None:
        shape = (parent, tuple(obj), tuple(map(type, obj.values())))
        learned = self._objects.get(shape)
        if learned is None:
            learned = self._learn_object(*shape, top, depth < MAX_DEPTH)
            if len(self._objects) < MAX_SHAPES:
                self._objects[shape] = learned
        breaches, children = learned
        if breaches:
            found.extend(breaches)
        for key, path, under, kind in children:
            if kind is dict:
                self._object(obj[key], path, under, depth + 1, found)
            else:
                self._list(obj[key], path, under, depth + 1, found)

    def _list(self, items: list, items_at: str, top: str, depth: int, found: list[Breach]) -> None:
        kinds = frozenset(map(type, items))
        shape = (items_at, kinds)
        breaches = self._lists.get(shape)
        if breaches is None:
            learned = (self._learn(top, items_at, json_type_of(kind)) for kind in kinds)
            breaches = self._lists[shape] = [breach for breach in learned if breach]
        if breaches:
            found.extend(breaches)
        if depth >= MAX_DEPTH:
            return
        if dict in kinds:
            objects = self._objects
            for item in items:
                # Inline for the usual item: a known shape with nothing to report and nothing inside to walk.
                if type(item) is dict:
                    learned = objects.get((items_at, tuple(item), tuple(map(type, item.values()))))
                    if learned is None or learned[0] or learned[1]:
                        self._object(item, items_at, top, depth + 1, found)
        if list in kinds:
            nested = items_path(items_at)
            for item in items:
                if type(item) is list:
                    self._list(item, nested, top, depth + 1, found)

    def _learn_object(
        self, parent: str, keys: tuple, kinds: tuple, top: str, descend: bool
    ) -> tuple[list, list]:
        breaches, children = [], []
        for key, kind in zip(keys, kinds, strict=True):
            path = child_path(parent, key)
            under = key if parent == ROOT else top
            breach = self._learn(under, path, json_type_of(kind))
            if breach:
                breaches.append(breach)
            if descend and kind is dict:
                children.append((key, path, under, kind))
            elif descend and kind is list:
                children.append((key, items_path(path), under, kind))
        return breaches, children

    def _learn(self, top: str, path: str, kind: str) -> Breach | None:
        self.seen.add(Pair(top, path, kind))
        breach = self.known.judge(path, kind) if self.known else None
        if breach:
            self.breached.add((path, kind))
        return breach


def outermost(breaches: list[Breach]) -> list[Breach]:
    """The breaches not inside another one (a new object's keys are new too: the object says it), each once."""
    paths = {b.path for b in breaches}
    kept, done = [], set()
    for breach in breaches:
        inside = any(
            breach.path.startswith(p) and breach.path[len(p)] in ".[" for p in paths if p != breach.path
        )
        if not inside and (breach.path, breach.json_type) not in done:
            done.add((breach.path, breach.json_type))
            kept.append(breach)
    return kept


class Removed(NamedTuple):
    breach: Breach
    value: object


def prune(record: dict, breaches: list[Breach]) -> tuple[dict, list[Removed]]:
    """A copy of `record` without its breaching values (`discard_value`), and the values taken out."""
    by_pair = {(b.path, b.json_type): b for b in breaches}
    removed: list[Removed] = []

    def keep(value: object, path: str) -> bool:
        breach = by_pair.get((path, json_type_of(type(value))))
        if breach:
            removed.append(Removed(breach, value))
        return breach is None

    def walk(value: object, path: str) -> object:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                child = child_path(path, key)
                if keep(item, child):
                    out[key] = walk(item, child)
            return out
        if isinstance(value, list):
            inner = items_path(path)
            return [walk(item, inner) for item in value if keep(item, inner)]
        return value

    return walk(record, ROOT), removed
