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
import re
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

_FIRST_PREFIX = 6
_LAST_PREFIX = 7


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


def _dobs(p: NormalizedPerson) -> tuple[dt.date, ...]:
    """The DOB, or where it was unreadable the dates it most likely meant."""
    return (p.dob,) if p.dob else p.dob_repairs


def _dob_iso(p: NormalizedPerson) -> tuple[str, ...]:
    return tuple(d.isoformat() for d in _dobs(p))


def _dob_swapped(p: NormalizedPerson) -> tuple[str, ...]:
    out = []
    for d in _dobs(p):
        if d.day > 12 or d.day == d.month:
            continue
        try:
            out.append(dt.date(d.year, d.day, d.month).isoformat())
        except ValueError:
            continue
    return tuple(out)


def _dob_part(fmt: str) -> FieldFn:
    def part(p: NormalizedPerson) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.strftime(fmt) for d in _dobs(p)))

    return part


def _given_names(p: NormalizedPerson) -> tuple[str, ...]:
    """First and middle name: records of one person differ on which of them they hold first."""
    names = [n for n in (p.first, p.middle) if n and len(n) > 1]
    return tuple(dict.fromkeys(names))


def _middle_initial(p: NormalizedPerson) -> tuple[str, ...]:
    return (p.middle[:1],) if p.middle else ()


_STREET_NUMBER = re.compile(r"[0-9]+")


def _street_number(p: NormalizedPerson) -> tuple[str, ...]:
    match = _STREET_NUMBER.match(p.street or "")
    return (match[0],) if match else ()


def _street_name(p: NormalizedPerson) -> tuple[str, ...]:
    """The street without its house number; compacted, so split and merged words agree."""
    name = _STREET_NUMBER.sub("", p.street or "", count=1)
    return (name,) if len(name) >= 3 else ()


def _ssn_digits(p: NormalizedPerson) -> tuple[str, ...]:
    """The SSN's digits in order of size: two digits keyed in each other's place agree."""
    return ("".join(sorted(p.ssn)),) if p.ssn else ()


def _name_pair(p: NormalizedPerson) -> tuple[str, ...]:
    if not p.first or not p.last:
        return ()
    return ("+".join(sorted((p.first, p.last))),)


def _soundex_pair(p: NormalizedPerson) -> tuple[str, ...]:
    """Both names' Soundex codes in sorted order: survives a first/last swap and typos in both."""
    if not p.first or not p.last:
        return ()
    return ("+".join(sorted((jellyfish.soundex(p.first), jellyfish.soundex(p.last)))),)


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
    "soundex_pair": _soundex_pair,
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
    "given_names": _given_names,
    "middle_initial": _middle_initial,
    "last_initial": lambda p: _one(p.last[:1] if p.last else None),
    "sex": lambda p: _one(p.sex),
    "ssn": lambda p: _one(p.ssn),
    "ssn_head5": _ssn_slice(0, 5),
    "ssn_tail4": _ssn_slice(5, 9),
    "ssn_digits": _ssn_digits,
    "zip": lambda p: _one(p.zip),
    "town": lambda p: _one(p.town),
    "street": lambda p: _one(p.street),
    "street_number": _street_number,
    "street_name": _street_name,
}


# The identifier each field is a function of. A token must combine at least two of them
# (sex aside, which alone tells little): a token of one identifier is a function of that
# identifier alone, and its equality pattern across rows is a dictionary for it.
FIELD_IDENTIFIER: Mapping[str, str] = {
    **{f: "given" for f in ("first", "middle", "first_initial", "first_forms", "first_del",
                            "first_soundex", "first_metaphone", "given_names", "middle_initial")},
    **{f: "surname" for f in ("last", "last_initial", "last_parts", "last_del",
                              "last_soundex", "last_metaphone")},
    **{f: "names" for f in ("name_pair", "soundex_pair")},
    **{f: "dob" for f in ("dob", "dob_swapped", "birth_year", "dob_ym", "dob_yd", "dob_md")},
    **{f: "ssn" for f in ("ssn", "ssn_head5", "ssn_tail4", "ssn_digits")},
    **{f: "address" for f in ("zip", "town", "street", "street_number", "street_name")},
    "sex": "sex",
}  # fmt: skip


def template_identifiers(template: Sequence[str]) -> set[str]:
    """The identifiers a template's token depends on, sex left out (it adds almost nothing)."""
    found: set[str] = set()
    for field in template:
        identifier = FIELD_IDENTIFIER.get(field, field)
        found.update(("given", "surname") if identifier == "names" else (identifier,))
    found.discard("sex")
    return found


@dataclass(frozen=True, slots=True)
class KeyGroup:
    """Tokens that survive one kind of error; agreement means the token sets intersect.

    `present` / `absent` name a field the record must hold / lack for the group to yield
    tokens at all. A group that `pairs_with` another yields tokens of that group's kind
    (the same templates, the same token text), and agrees with it across the two: a
    record without a first name agrees with one that has it, through the pair, while two
    records that both have one agree only on the other group.
    """

    name: str
    slots: int
    templates: tuple[tuple[str, ...], ...]
    present: str | None = None
    absent: str | None = None
    pairs_with: str | None = None

    def tokens(self, person: NormalizedPerson, fields: FieldCache | None = None) -> list[str]:
        """The group's tokens of one record, sorted; `fields` caches field values across groups."""
        cache: FieldCache = {} if fields is None else fields
        if (self.present and not _field(person, self.present, cache)) or (
            self.absent and _field(person, self.absent, cache)
        ):
            return []
        values: set[str] = set()
        for template in self.templates:
            values.update(_expand(person, template, cache))
        # Deterministic truncation so the cleartext reference and every node agree.
        kind = self.pairs_with or self.name
        return [f"{kind}\x1f{v}" for v in sorted(values)[: self.slots]]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "slots": self.slots,
            "templates": [list(t) for t in self.templates],
        }
        for key in ("present", "absent", "pairs_with"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _field(person: NormalizedPerson, field: str, cache: FieldCache) -> tuple[str, ...]:
    values = cache.get(field)
    if values is None:
        values = cache[field] = FIELDS[field](person)
    return values


def _expand(person: NormalizedPerson, template: Sequence[str], cache: FieldCache) -> Iterable[str]:
    combos: list[str] = [""]
    for field in template:
        values = _field(person, field, cache)
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
        return Comparison(
            tuple(n for n, _ in features),
            tuple(b for _, b in features),
            self.linkable_mask,
            self._nulls([members for _, members in features]),
        )

    def _nulls(self, features: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
        """(bit, feature) where agreeing on the group shows the feature was not compared.

        A group made only by records that lack a field proves, when a pair agrees on it,
        that one side lacks that field; a feature all of whose groups read the field
        could not have agreed, so its "none" is no evidence against the pair.
        """
        out = []
        for bit, group in enumerate(self.groups):
            missing = FIELD_IDENTIFIER.get(group.absent or "")
            if missing is None:
                continue
            for f, members in enumerate(features):
                if all(
                    missing in template_identifiers(t)
                    for g in members
                    for t in self.groups[g].templates
                ):
                    out.append((bit, f))
        return tuple(out)

    @property
    def linkable_mask(self) -> int:
        """Groups that show the given name or the SSN agree: a link needs one of them.

        Twins and siblings share surname, DOB and address; nothing but the given name (or
        the SSN) tells them apart, so agreement on the other identifiers alone, however
        strong, never makes a link. A group counts when each of its templates reads the
        given name (any form of it) or each reads the SSN.
        """
        mask = 0
        for bit, group in enumerate(self.groups):
            ids = [template_identifiers(t) for t in group.templates]
            # A group only records without a first name make: a pair agreeing on it had no
            # first names to disagree on (the classic hub links such pairs too).
            absent_given = FIELD_IDENTIFIER.get(group.absent or "") == "given"
            if all("given" in i for i in ids) or all("ssn" in i for i in ids) or absent_given:
                mask |= 1 << bit
        return mask

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

    @property
    def paired_slices(self) -> tuple[tuple[int, tuple[int, int], tuple[int, int]], ...]:
        """(bit, its slice, its partner's slice) for each group that pairs with another."""
        slices = dict(zip((g.name for g in self.groups), self.group_slices, strict=True))
        return tuple(
            (bit, slices[g.name], slices[g.pairs_with])
            for bit, g in enumerate(self.groups)
            if g.pairs_with
        )

    def row_tokens(self, persons: Sequence[NormalizedPerson]) -> list[str | None]:
        """One row's slots (None = unused) from one or more records of one person."""
        caches: list[FieldCache] = [{} for _ in persons]
        chosen: dict[str, list[str]] = {}
        for group in self.groups:
            if len(persons) == 1:  # already sorted and truncated
                chosen[group.name] = group.tokens(persons[0], caches[0])
            else:
                tokens: set[str] = set()
                for person, cache in zip(persons, caches, strict=True):
                    tokens.update(group.tokens(person, cache))
                chosen[group.name] = sorted(tokens)[: group.slots]
        row: list[str | None] = []
        for group in self.groups:
            mine = chosen[group.name]
            if group.pairs_with:
                # A person of several records may hold a token in both groups of a pair: it
                # stays in the partner's slot only, so no row shows one token twice.
                partner = set(chosen[group.pairs_with])
                mine = [t for t in mine if t not in partner]
            row.extend(mine)
            row.extend([None] * (group.slots - len(mine)))
        return row

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": [g.to_dict() for g in self.groups],
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
                    **{k: str(g[k]) for k in ("present", "absent", "pairs_with") if g.get(k)},
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
            if len(template_identifiers(template)) < 2:
                raise InvalidSpec(
                    f"key profile {name!r}: group {g.name!r} has a template of one identifier "
                    f"({' + '.join(template)}); every token must combine at least two of given "
                    "name, surname, DOB, SSN and address, so that no token is a function of one "
                    "identifier alone (a dictionary for it)"
                )
        for condition in (g.present, g.absent):
            if condition is not None and condition not in FIELDS:
                raise InvalidSpec(
                    f"key profile {name!r}: group {g.name!r} is conditional on unknown field "
                    f"{condition!r}; known fields: {', '.join(sorted(FIELDS))}"
                )
    by_name = {g.name: g for g in groups}
    for g in groups:
        if g.pairs_with is None:
            continue
        partner = by_name.get(g.pairs_with)
        if (
            partner is None
            or partner.pairs_with
            or partner.templates != g.templates
            or g.absent is None
            or partner.present != g.absent
        ):
            raise InvalidSpec(
                f"key profile {name!r}: group {g.name!r} pairs with {g.pairs_with!r}, which "
                "must be another group of the same templates, present exactly where this one "
                f"is absent (present: {g.absent!r})"
            )


def _group(name: str, slots: int, *templates: Sequence[str]) -> dict[str, Any]:
    return {"name": name, "slots": slots, "templates": [list(t) for t in templates]}


# The default profile. Each group survives one kind of error in the fields it leaves out
# or reads loosely; together they survive two errors in one record (a typo in the first
# name and a DOB off by a year; a swapped name and a mistyped surname). Groups of one
# field's loose form with another field (Soundex with DOB, initial with street) find the
# candidates; the exact groups rank them.
STANDARD: Mapping[str, Any] = {
    "name": "standard",
    "groups": [
        # The SSN with a name initial or the birth year, so no token is a function of the
        # SSN alone, and a wrong initial or year still leaves the other two.
        _group("ssn", 3, ["ssn", "first_initial"], ["ssn", "last_initial"], ["ssn", "birth_year"]),
        # Part of the SSN with the first name's Soundex: a one-digit typo keeps one part,
        # while twins (often consecutive SSNs, same DOB) usually differ in first name.
        _group("ssn_part_first", 2, ["ssn_head5", "first_soundex"], ["ssn_tail4", "first_soundex"]),
        # The SSN's digits sorted: two digits keyed in each other's place still agree.
        _group("ssn_digits_year", 1, ["ssn_digits", "birth_year"]),
        _group("name_dob", 1, ["first", "last", "dob"]),
        _group("name_pair_dob", 1, ["name_pair", "dob"]),
        _group("first_typo_dob", _FIRST_PREFIX + 1, ["first_del", "last", "dob"]),
        _group("last_typo_dob", _LAST_PREFIX + 1, ["first", "last_del", "dob"]),
        _group("nickname_dob", 3, ["first_forms", "last", "dob"]),
        _group("name_dob_swap", 2, ["first", "last", "dob"], ["first", "last", "dob_swapped"]),
        _group("first_dob", 1, ["first", "dob"]),
        # First or middle name against either: records differ on which given name they hold.
        _group("given_dob", 2, ["given_names", "last", "dob"]),
        _group("phonetic_dob", 1, ["first_soundex", "last_soundex", "dob"]),
        _group("soundex_pair_year", 1, ["soundex_pair", "birth_year"]),
        _group(
            "name_dob_partial",
            3,
            ["first", "last", "dob_ym"],
            ["first", "last", "dob_yd"],
            ["first", "last", "dob_md"],
        ),
        _group("first_sound_dob", 1, ["first_soundex", "dob"]),
        _group("initial_last_sound_dob", 1, ["first_initial", "last_soundex", "dob"]),
        _group("phonetic_year", 1, ["first_soundex", "last_soundex", "birth_year"]),
        _group("name_street", 1, ["first", "last", "street"]),
        _group("name_zip", 1, ["first", "last", "zip"]),
        _group("first_sound_dob_zip", 1, ["first_soundex", "dob", "zip"]),
        # Surname and DOB with the house number or the ZIP. A record with no first name
        # (missing, or a placeholder such as "Baby") yields these tokens in a group of its
        # own, which agrees with the same tokens of a record that has one: nothing
        # disagrees there. Two records that both have a first name agree only on the plain
        # group, which never makes a link alone (twins share all of it).
        {
            **_group("last_dob_place", 2, ["last", "dob", "street_number"], ["last", "dob", "zip"]),
            "present": "first",
        },
        {
            **_group(
                "no_first_dob_place", 2, ["last", "dob", "street_number"], ["last", "dob", "zip"]
            ),
            "absent": "first",
            "pairs_with": "last_dob_place",
        },
        _group("first_sound_street", 1, ["first_soundex", "street"]),
        _group("initial_md_street", 1, ["first_initial", "dob_md", "street"]),
    ],
    # Levels of each comparison feature, strongest first.
    "features": {
        "ssn": ["ssn", "ssn_part_first", "ssn_digits_year"],
        "name_dob": [
            "name_dob",
            "name_pair_dob",
            "nickname_dob",
            "first_typo_dob",
            "last_typo_dob",
            "given_dob",
            "name_dob_swap",
            "phonetic_dob",
            "name_dob_partial",
            "first_dob",
            "first_sound_dob",
            "initial_last_sound_dob",
            "phonetic_year",
            "soundex_pair_year",
        ],
        "place": [
            "name_street",
            "name_zip",
            "first_sound_dob_zip",
            "no_first_dob_place",
            "last_dob_place",
            "first_sound_street",
            "initial_md_street",
        ],
    },
}

# For extracts without dates of birth (wage records carry SSN and name only): names with
# the SSN's parts and the address take the place of names with the DOB.
NO_DOB: Mapping[str, Any] = {
    "name": "no_dob",
    "groups": [
        _group("ssn", 2, ["ssn", "first_initial"], ["ssn", "last_initial"]),
        _group("ssn_part_first", 2, ["ssn_head5", "first_soundex"], ["ssn_tail4", "first_soundex"]),
        _group("ssn_part_last", 2, ["ssn_head5", "last_soundex"], ["ssn_tail4", "last_soundex"]),
        _group("ssn_digits_last", 1, ["ssn_digits", "last_soundex"]),
        _group("name_ssn_tail", 1, ["first", "last", "ssn_tail4"]),
        _group("name_street", 1, ["first", "last", "street"]),
        _group("name_zip", 1, ["first", "last", "zip"]),
        _group("name_town", 1, ["first", "last", "town"]),
        _group("first_typo_zip", _FIRST_PREFIX + 1, ["first_del", "last", "zip"]),
        _group("last_typo_zip", _LAST_PREFIX + 1, ["first", "last_del", "zip"]),
        _group("nickname_zip", 4, ["first_forms", "last", "zip"]),
        _group("phonetic_zip", 1, ["first_soundex", "last_soundex", "zip"]),
        _group("phonetic_street", 1, ["first_soundex", "last_soundex", "street"]),
        _group("first_sound_street", 1, ["first_soundex", "street"]),
        _group("soundex_pair_zip", 1, ["soundex_pair", "zip"]),
        _group("initial_last_street", 1, ["first_initial", "last_soundex", "street"]),
        _group("full_name", 1, ["first", "middle", "last"]),
    ],
    "features": {
        "ssn": ["ssn", "ssn_part_first", "ssn_part_last", "ssn_digits_last", "name_ssn_tail"],
        "name_place": [
            "name_street",
            "name_zip",
            "nickname_zip",
            "first_typo_zip",
            "last_typo_zip",
            "name_town",
            "phonetic_street",
            "phonetic_zip",
            "soundex_pair_zip",
            "first_sound_street",
            "initial_last_street",
        ],
        "full_name": ["full_name"],
    },
}

PROFILES: Mapping[str, Mapping[str, Any]] = {"standard": STANDARD, "no_dob": NO_DOB}


def profile_for_fields(*cohort_fields: Iterable[str]) -> str:
    """The built-in profile that suits the identifier fields every cohort carries.

    `cohort_fields` are canonical field names present (non-empty somewhere) in each
    cohort's extract. Without a DOB on some side, every DOB-bearing token is random fill
    there, so the profile spends its slots on names, SSN parts and address instead.
    """
    shared = set.intersection(*(set(f) for f in cohort_fields)) if cohort_fields else set()
    return "standard" if "dob" in shared else "no_dob"


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
