"""Error-tolerant match keys: a key profile (data) turns a person into fixed slots of tokens.

A profile is a list of key *groups*. Each group has a fixed number of slots and one or
more templates; a template is a list of field names whose values are joined into a
token (multi-valued fields expand into several tokens). Two records agree on a group
when their token sets for it intersect, so each group survives one kind of error.
Every record yields exactly ``profile.slots`` tokens: unused slots are filled with
fresh random items, so neither missingness nor name length survives blinding.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jellyfish

from protocol.errors import InvalidSpec
from protocol.linkage.fellegi_sunter import Comparison
from protocol.records import NormalizedPerson

FieldFn = Callable[[NormalizedPerson], tuple[str, ...]]
FieldCache = dict[str, tuple[str, ...]]  # one record's field values, computed once per row

_FIRST_PREFIX = 7
_LAST_PREFIX = 8


def _one(value: str | None) -> tuple[str, ...]:
    return (value,) if value else ()


def deletion_variants(name: str | None, prefix: int) -> tuple[str, ...]:
    """The name's first `prefix` letters and every single-letter deletion of them.

    Two names within one edit (substitution, insertion, deletion, transposition) share
    at least one variant; truncation keeps the count bounded for long names.
    """
    if not name:
        return ()
    head = name[:prefix]
    variants = {head}
    if len(head) > 1:
        variants.update(head[:i] + head[i + 1 :] for i in range(len(head)))
    return tuple(sorted(variants))


def _dob_iso(p: NormalizedPerson) -> tuple[str, ...]:
    return (p.dob.isoformat(),) if p.dob else ()


def _dob_swapped(p: NormalizedPerson) -> tuple[str, ...]:
    d = p.dob
    if d is None or d.day > 12 or d.day == d.month:
        return ()
    try:
        return (dt.date(d.year, d.day, d.month).isoformat(),)
    except ValueError:
        return ()


def _dob_part(fmt: str) -> FieldFn:
    def part(p: NormalizedPerson) -> tuple[str, ...]:
        return (p.dob.strftime(fmt),) if p.dob else ()

    return part


def _name_pair(p: NormalizedPerson) -> tuple[str, ...]:
    if not p.first or not p.last:
        return ()
    return ("+".join(sorted((p.first, p.last))),)


def _phonetic(attr: str, fn: Callable[[str], str]) -> FieldFn:
    def code(p: NormalizedPerson) -> tuple[str, ...]:
        value = getattr(p, attr)
        return (fn(value),) if value else ()

    return code


def _ssn_slice(start: int, stop: int) -> FieldFn:
    def part(p: NormalizedPerson) -> tuple[str, ...]:
        return (p.ssn[start:stop],) if p.ssn else ()

    return part


FIELDS: Mapping[str, FieldFn] = {
    "first": lambda p: _one(p.first),
    "middle": lambda p: _one(p.middle),
    "last": lambda p: _one(p.last),
    "first_initial": lambda p: _one(p.first[:1] if p.first else None),
    "first_forms": lambda p: p.first_forms,
    "last_parts": lambda p: p.last_parts,
    "first_del": lambda p: deletion_variants(p.first, _FIRST_PREFIX),
    "last_del": lambda p: deletion_variants(p.last, _LAST_PREFIX),
    "name_pair": _name_pair,
    "first_soundex": _phonetic("first", jellyfish.soundex),
    "last_soundex": _phonetic("last", jellyfish.soundex),
    "first_metaphone": _phonetic("first", jellyfish.metaphone),
    "last_metaphone": _phonetic("last", jellyfish.metaphone),
    "dob": _dob_iso,
    "dob_swapped": _dob_swapped,
    "birth_year": _dob_part("%Y"),
    "dob_ym": _dob_part("Y%Y-M%m"),
    "dob_yd": _dob_part("Y%Y-D%d"),
    "dob_md": _dob_part("M%m-D%d"),
    "sex": lambda p: _one(p.sex),
    "ssn": lambda p: _one(p.ssn),
    "ssn_head5": _ssn_slice(0, 5),
    "ssn_tail4": _ssn_slice(5, 9),
    "zip": lambda p: _one(p.zip),
    "town": lambda p: _one(p.town),
    "street": lambda p: _one(p.street),
}


@dataclass(frozen=True, slots=True)
class KeyGroup:
    """Tokens that survive one kind of error; agreement means the token sets intersect."""

    name: str
    slots: int
    templates: tuple[tuple[str, ...], ...]

    def tokens(self, person: NormalizedPerson, fields: FieldCache | None = None) -> list[str]:
        """The group's tokens of one record, sorted; `fields` caches field values across groups."""
        cache: FieldCache = {} if fields is None else fields
        values: set[str] = set()
        for template in self.templates:
            values.update(_expand(person, template, cache))
        # Deterministic truncation so the cleartext reference and every node agree.
        return [f"{self.name}\x1f{v}" for v in sorted(values)[: self.slots]]


def _expand(person: NormalizedPerson, template: Sequence[str], cache: FieldCache) -> Iterable[str]:
    combos: list[str] = [""]
    for field in template:
        values = cache.get(field)
        if values is None:
            values = cache[field] = FIELDS[field](person)
        if not values:
            return []
        combos = [f"{c}\x1e{v}" if c else v for c in combos for v in values]
    return combos


@dataclass(frozen=True, slots=True)
class KeyProfile:
    """A named list of key groups (the layout of every row's slots) and comparison features.

    `features` maps a feature name to its groups, best level first; a group listed in
    no feature is a binary feature of its own.
    """

    name: str
    groups: tuple[KeyGroup, ...]
    features: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def comparison(self) -> Comparison:
        bit = {g.name: i for i, g in enumerate(self.groups)}
        listed = {g for _, members in self.features for g in members}
        features = [(name, tuple(bit[g] for g in members)) for name, members in self.features]
        features += [(g.name, (bit[g.name],)) for g in self.groups if g.name not in listed]
        return Comparison(tuple(n for n, _ in features), tuple(b for _, b in features))

    @property
    def slots(self) -> int:
        return sum(g.slots for g in self.groups)

    @property
    def group_slices(self) -> tuple[tuple[int, int], ...]:
        out, start = [], 0
        for g in self.groups:
            out.append((start, start + g.slots))
            start += g.slots
        return tuple(out)

    def row_tokens(self, persons: Sequence[NormalizedPerson]) -> list[str | None]:
        """One row's slots (None = unused) from one or more records of one person."""
        caches: list[FieldCache] = [{} for _ in persons]
        row: list[str | None] = []
        for group in self.groups:
            if len(persons) == 1:  # already sorted and truncated
                chosen = group.tokens(persons[0], caches[0])
            else:
                tokens: set[str] = set()
                for person, cache in zip(persons, caches, strict=True):
                    tokens.update(group.tokens(person, cache))
                chosen = sorted(tokens)[: group.slots]
            row.extend(chosen)
            row.extend([None] * (group.slots - len(chosen)))
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": [
                {"name": g.name, "slots": g.slots, "templates": [list(t) for t in g.templates]}
                for g in self.groups
            ],
            "features": {name: list(members) for name, members in self.features},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyProfile:
        try:
            name = str(data["name"])
            raw_groups = data["groups"]
            groups = tuple(
                KeyGroup(
                    name=str(g["name"]),
                    slots=int(g["slots"]),
                    templates=tuple(tuple(str(f) for f in t) for t in g["templates"]),
                )
                for g in raw_groups
            )
            features = tuple(
                (str(f), tuple(str(g) for g in members))
                for f, members in dict(data.get("features") or {}).items()
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSpec(
                f"key profile is malformed ({exc!r}); expected "
                "{'name': ..., 'groups': [{'name', 'slots', 'templates'}]}"
            ) from exc
        _validate(name, groups, features)
        return cls(name=name, groups=groups, features=features)


def _validate(
    name: str, groups: Sequence[KeyGroup], features: Sequence[tuple[str, tuple[str, ...]]]
) -> None:
    known = {g.name for g in groups}
    placed: set[str] = set()
    for feature, members in features:
        for member in members:
            if member not in known or member in placed:
                raise InvalidSpec(
                    f"key profile {name!r}: feature {feature!r} lists group {member!r}, which is "
                    "unknown or already in another feature"
                )
            placed.add(member)
    if not groups:
        raise InvalidSpec(f"key profile {name!r} has no groups")
    seen: set[str] = set()
    for g in groups:
        if g.name in seen:
            raise InvalidSpec(f"key profile {name!r}: group {g.name!r} appears twice")
        seen.add(g.name)
        if g.slots < 1 or not g.templates:
            raise InvalidSpec(
                f"key profile {name!r}: group {g.name!r} needs slots >= 1 and a template"
            )
        for template in g.templates:
            unknown = [f for f in template if f not in FIELDS]
            if unknown or not template:
                raise InvalidSpec(
                    f"key profile {name!r}: group {g.name!r} uses unknown field(s) "
                    f"{', '.join(unknown) or '(none)'}; known fields: {', '.join(sorted(FIELDS))}"
                )


STANDARD: Mapping[str, Any] = {
    "name": "standard",
    "groups": [
        {"name": "ssn", "slots": 1, "templates": [["ssn"]]},
        # Part of the SSN with the first name's Soundex: a one-digit typo keeps one part,
        # while twins (often consecutive SSNs, same DOB) usually differ in first name.
        {
            "name": "ssn_part_first",
            "slots": 2,
            "templates": [["ssn_head5", "first_soundex"], ["ssn_tail4", "first_soundex"]],
        },
        {"name": "name_dob", "slots": 1, "templates": [["first", "last", "dob"]]},
        {"name": "name_pair_dob", "slots": 1, "templates": [["name_pair", "dob"]]},
        {
            "name": "first_typo_dob",
            "slots": _FIRST_PREFIX + 1,
            "templates": [["first_del", "last", "dob"]],
        },
        {
            "name": "last_typo_dob",
            "slots": _LAST_PREFIX + 1,
            "templates": [["first", "last_del", "dob"]],
        },
        {"name": "nickname_dob", "slots": 4, "templates": [["first_forms", "last", "dob"]]},
        {
            "name": "name_dob_swap",
            "slots": 2,
            "templates": [["first", "last", "dob"], ["first", "last", "dob_swapped"]],
        },
        {"name": "first_dob", "slots": 1, "templates": [["first", "dob"]]},
        {"name": "surname_part_dob", "slots": 2, "templates": [["first", "last_parts", "dob"]]},
        {
            "name": "phonetic_year",
            "slots": 1,
            "templates": [["first_soundex", "last_soundex", "birth_year"]],
        },
        {
            "name": "name_dob_partial",
            "slots": 3,
            "templates": [
                ["first", "last", "dob_ym"],
                ["first", "last", "dob_yd"],
                ["first", "last", "dob_md"],
            ],
        },
        {"name": "name_zip", "slots": 1, "templates": [["first", "last", "zip"]]},
        {"name": "first_sound_dob_zip", "slots": 1, "templates": [["first_soundex", "dob", "zip"]]},
        {"name": "last_dob_zip", "slots": 1, "templates": [["last", "dob", "zip"]]},
    ],
    # Levels of each comparison feature, strongest first.
    "features": {
        "ssn": ["ssn", "ssn_part_first"],
        "name_dob": [
            "name_dob",
            "name_pair_dob",
            "nickname_dob",
            "first_typo_dob",
            "last_typo_dob",
            "surname_part_dob",
            "name_dob_swap",
            "name_dob_partial",
            "first_dob",
            "phonetic_year",
        ],
        "zip": ["name_zip", "first_sound_dob_zip", "last_dob_zip"],
    },
}

PROFILES: Mapping[str, Mapping[str, Any]] = {"standard": STANDARD}


def load_profile(profile: str | Mapping[str, Any]) -> KeyProfile:
    """A built-in profile by name, or a profile given as data."""
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise InvalidSpec(
                f"unknown key profile {profile!r}; built-in profiles: {', '.join(PROFILES)}"
            )
        return KeyProfile.from_dict(PROFILES[profile])
    return KeyProfile.from_dict(profile)


def fill_slots(row: Sequence[str | None]) -> list[bytes]:
    """Tokens as bytes for blinding, unused slots replaced by fresh random items."""
    return [t.encode() if t is not None else b"\x00" + secrets.token_bytes(16) for t in row]
