"""Group-by terms and how a tally encodes them: packed one-hot histograms or group codes.

Every party derives the same `GroupLayout` from the public spec. When all terms come
from one cohort, that cohort's rows carry an encrypted one-hot vector and the joiner
returns one packed encrypted histogram. Otherwise each cohort's rows carry its share
of a mixed-radix group code; shares add up homomorphically per entity. Derived date
terms (entry order, years between) use a wide field where the first cohort adds
``OFFSET - days`` and the second adds ``days``, so the sum is the day difference;
a missing side contributes a large random mask instead, and a validity digit (sum 2
only when both dates were present) tells the hub whether the field is meaningful.
A missing first date's mask carries the ``OFFSET`` its date would have, so the field
looks the same (``OFFSET`` plus a 100-bit random number) whichever date is missing.
"""

from __future__ import annotations

import ast
import datetime as dt
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from protocol.cohort import age_on
from protocol.errors import InvalidSpec
from protocol.linkage.normalize import normalize_sex, parse_dob
from protocol.paillier import MixedRadix, OneHotPacking
from protocol.records import PersonRecord
from protocol.setexpr import Population
from protocol.spec import QuerySpec

ABSENT = "(absent)"
UNKNOWN = "unknown"
OTHER = "other"
NOT_APPLICABLE = "n/a"
TOTAL_DIMENSION = "population"
TOTAL_LABEL = "all"
DEFAULT_LEVELS = {"sex": ("F", "M", "X")}
FIELD_BITS = 128
OFFSET = 1 << 126
MASK_BITS = 100
_EPOCH = dt.date(1900, 1, 1)
MAX_YEARS = 15
MAX_ONEHOT_CIPHERTEXTS = 4


@dataclass(frozen=True)
class Term:
    """One group-by term: an attribute, an age group, or a derived two-date term."""

    text: str
    kind: str  # "attr" | "age_group" | "entry_order" | "years_between"
    cohorts: tuple[str, ...]
    fields: tuple[str, ...]
    labels: tuple[str, ...]

    @property
    def derived(self) -> bool:
        return self.kind in ("entry_order", "years_between")


def parse_term(text: str, spec: QuerySpec, optional: frozenset[str]) -> Term:
    """Parse ``cohort.attr``, ``age_group(cohort.dob)`` or ``entry_order(a.x, b.y)``."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise InvalidSpec(f"group_by term {text!r} is not valid syntax") from exc
    if isinstance(node, ast.Attribute):
        cohort, attr = _ref(node, text, spec)
        levels = spec.levels.get(text) or spec.levels.get(attr) or DEFAULT_LEVELS.get(attr)
        if not levels:
            raise InvalidSpec(
                f'group_by term {text!r} needs its categories: add "levels": {{{text!r}: [...]}}'
            )
        labels = (*levels, OTHER, UNKNOWN) + ((ABSENT,) if cohort in optional else ())
        return Term(text, "attr", (cohort,), (attr,), labels)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func, args = node.func.id, node.args
        refs = [_ref(a, text, spec) for a in args]
        if func == "age_group" and len(refs) == 1:
            cohort, attr = refs[0]
            labels = (*spec.age_groups, UNKNOWN) + ((ABSENT,) if cohort in optional else ())
            _age_bins(spec.age_groups)
            return Term(text, "age_group", (cohort,), (attr,), labels)
        if func in ("entry_order", "years_between") and len(refs) == 2:
            (a, fa), (b, fb) = refs
            if a == b:
                raise InvalidSpec(f"group_by term {text!r} compares two dates of one cohort")
            if func == "entry_order":
                labels = (f"{a} first", f"{b} first", "same day", NOT_APPLICABLE)
            else:
                labels = (*(str(y) for y in range(MAX_YEARS)), f"{MAX_YEARS}+", NOT_APPLICABLE)
            return Term(text, func, (a, b), (fa, fb), labels)
    raise InvalidSpec(
        f"group_by term {text!r} is not understood; write cohort.attribute, "
        "age_group(cohort.dob), entry_order(a.date, b.date) or years_between(a.date, b.date)"
    )


def _ref(node: ast.expr, text: str, spec: QuerySpec) -> tuple[str, str]:
    if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
        raise InvalidSpec(f"group_by term {text!r}: expected cohort.attribute")
    cohort = node.value.id
    if cohort not in spec.cohorts:
        raise InvalidSpec(
            f"group_by term {text!r} names unknown cohort {cohort!r}; "
            f"cohorts: {', '.join(spec.cohorts)}"
        )
    return cohort, node.attr


def _age_bins(groups: Sequence[str]) -> list[tuple[int, int]]:
    bins = []
    for g in groups:
        try:
            if g.endswith("+"):
                bins.append((int(g[:-1]), 10**6))
            else:
                lo, hi = g.split("-")
                bins.append((int(lo), int(hi)))
        except ValueError as exc:
            raise InvalidSpec(f"age group {g!r} must look like '14-17' or '27+'") from exc
    return bins


@dataclass(frozen=True)
class GroupLayout:
    """How group labels become plaintexts; derived from the public spec by every party."""

    terms: tuple[Term, ...]
    mode: str  # "count" | "onehot" | "codes"
    owner: str | None  # cohort carrying the one-hot vector
    packing: OneHotPacking | None
    radix: MixedRadix | None

    @property
    def dimensions(self) -> tuple[str, ...]:
        return tuple(t.text for t in self.terms) or (TOTAL_DIMENSION,)

    @property
    def levels(self) -> tuple[tuple[str, ...], ...]:
        return tuple(t.labels for t in self.terms) or ((TOTAL_LABEL,),)

    def carriers(self) -> set[str]:
        """Cohorts whose rows carry ciphertexts."""
        if self.mode == "onehot" and self.owner:
            return {self.owner}
        if self.mode == "codes":
            return {c for t in self.terms for c in t.cohorts}
        return set()

    def width(self, cohort: str) -> int:
        """Ciphertexts per row of `cohort`."""
        if cohort not in self.carriers():
            return 0
        return self.packing.ciphertexts if self.packing else 1


def build_layout(
    spec: QuerySpec, population: Population, *, n_bits: int, max_count: int
) -> GroupLayout:
    optional = frozenset(c for c in spec.cohorts if not _required(population, c, spec))
    terms = tuple(parse_term(t, spec, optional) for t in spec.group_by)
    if not terms:
        return GroupLayout((), "count", None, None, None)
    owners = {c for t in terms for c in t.cohorts}
    cells = 1
    for t in terms:
        cells *= len(t.labels)
    if len(owners) == 1 and not any(t.derived for t in terms):
        packing = OneHotPacking.for_capacity(cells, max_count, n_bits)
        if packing.ciphertexts <= MAX_ONEHOT_CIPHERTEXTS:
            return GroupLayout(terms, "onehot", next(iter(owners)), packing, None)
    radices = [len(t.labels) for t in terms if not t.derived]
    derived = [t for t in terms if t.derived]
    radices += [3] * len(derived) + [1 << FIELD_BITS] * len(derived)
    radix = MixedRadix(radices)
    if radix.size.bit_length() >= n_bits - 2:
        raise InvalidSpec("too many group-by categories for one ciphertext; drop a term")
    return GroupLayout(terms, "codes", None, None, radix)


def _required(population: Population, cohort: str, spec: QuerySpec) -> bool:
    names = sorted(spec.cohorts)
    for mask in range(1 << len(names)):
        members = {n for i, n in enumerate(names) if mask >> i & 1}
        if population.contains(members) and cohort not in members:
            return False
    return True


def term_label(term: Term, persons: Sequence[PersonRecord], spec: QuerySpec) -> str:
    """A single-cohort term's label for one person (their records in record order)."""
    value = _first_value(persons, term.fields[0])
    if term.kind == "age_group":
        dob = parse_dob(value).value if value else None
        if dob is None:
            return UNKNOWN
        age = age_on(dob, spec.as_of)
        for label, (lo, hi) in zip(spec.age_groups, _age_bins(spec.age_groups), strict=True):
            if lo <= age <= hi:
                return label
        return UNKNOWN
    if value is None:
        return UNKNOWN
    if term.fields[0] == "sex":
        value = normalize_sex(value) or ""
    wanted = value.strip().upper()
    for label in term.labels:
        if label.upper() == wanted and label not in (OTHER, UNKNOWN, ABSENT):
            return label
    return OTHER


def person_days(persons: Sequence[PersonRecord], attr: str) -> int | None:
    """Earliest valid date of `attr` among a person's records, as days since 1900-01-01."""
    days = [
        (d - _EPOCH).days
        for r in persons
        if (v := r.value(attr)) and (d := parse_dob(v).value) is not None
    ]
    return min(days) if days else None


def _first_value(persons: Sequence[PersonRecord], attr: str) -> str | None:
    for r in persons:
        if (v := r.value(attr)) is not None:
            return v
    return None


def derived_label(term: Term, diff_days: int | None) -> str:
    """Label of a derived term from the day difference second - first (None = n/a)."""
    if diff_days is None:
        return NOT_APPLICABLE
    if term.kind == "entry_order":
        return (
            term.labels[0] if diff_days > 0 else term.labels[1] if diff_days < 0 else term.labels[2]
        )
    years = int(abs(diff_days) // 365.25)
    return str(years) if years < MAX_YEARS else f"{MAX_YEARS}+"


RandBits = Callable[[int], int]


def missing_date(side: int, randbits: RandBits = secrets.randbits) -> int:
    """What a derived term's field gets for a missing date on `side` (0 first, 1 second).

    A present first date adds ``OFFSET - days`` and a present second one ``days``; a
    missing one adds a random ``MASK_BITS``-bit number, plus ``OFFSET`` on the first side.
    Either way a field with one date missing is ``OFFSET`` plus a near-uniform 100-bit
    number, so its size does not tell the hub which cohort lacked the date.
    """
    return (OFFSET if side == 0 else 0) + randbits(MASK_BITS)


def contribution(
    layout: GroupLayout,
    cohort: str,
    persons: Sequence[PersonRecord],
    spec: QuerySpec,
    *,
    randbits: RandBits = secrets.randbits,
) -> list[int]:
    """The plaintexts one person's row of `cohort` carries (empty if it carries none)."""
    if layout.mode == "onehot":
        if cohort != layout.owner or layout.packing is None:
            return []
        labels = [term_label(t, persons, spec) for t in layout.terms]
        return layout.packing.encode(cell_index(layout, labels))
    if layout.mode != "codes" or layout.radix is None or cohort not in layout.carriers():
        return []
    code = 0
    digit = 0
    for term in layout.terms:
        if term.derived:
            continue
        if cohort in term.cohorts:
            code += term.labels.index(term_label(term, persons, spec)) * layout.radix.place_value(
                digit
            )
        digit += 1
    derived = [t for t in layout.terms if t.derived]
    for k, term in enumerate(derived):
        valid_place = layout.radix.place_value(digit + k)
        field_place = layout.radix.place_value(digit + len(derived) + k)
        for side, (c, attr) in enumerate(zip(term.cohorts, term.fields, strict=True)):
            if c != cohort:
                continue
            days = person_days(persons, attr)
            if days is None:
                code += missing_date(side, randbits) * field_place
            else:
                code += valid_place + (days if side else OFFSET - days) * field_place
    return [code]


def absent_contribution(
    layout: GroupLayout, present: set[str], *, randbits: RandBits = secrets.randbits
) -> int:
    """What the joiner adds for the cohorts missing from one entity."""
    if layout.mode == "onehot" and layout.owner and layout.owner not in present:
        return -1  # caller adds the ABSENT one-hot cell
    if layout.mode != "codes" or layout.radix is None:
        return 0
    code = 0
    digit = 0
    for term in layout.terms:
        if term.derived:
            continue
        if term.cohorts[0] not in present:
            code += term.labels.index(ABSENT) * layout.radix.place_value(digit)
        digit += 1
    derived = [t for t in layout.terms if t.derived]
    for k, term in enumerate(derived):
        field_place = layout.radix.place_value(digit + len(derived) + k)
        for side, c in enumerate(term.cohorts):
            if c not in present:
                code += missing_date(side, randbits) * field_place
    return code


def cell_index(layout: GroupLayout, labels: Sequence[str]) -> int:
    index = 0
    for term, label in zip(layout.terms, labels, strict=True):
        index = index * len(term.labels) + term.labels.index(label)
    return index


def cell_labels(layout: GroupLayout, index: int) -> tuple[str, ...]:
    out: list[str] = []
    for term in reversed(layout.terms):
        index, rem = divmod(index, len(term.labels))
        out.append(term.labels[rem])
    return tuple(reversed(out))


def decode_code(layout: GroupLayout, code: int) -> tuple[str, ...]:
    """The hub's view of one decrypted group code: the labels of its cell."""
    if layout.radix is None:
        raise InvalidSpec("decode_code needs a codes layout")
    digits = layout.radix.decode(code)
    plain = [t for t in layout.terms if not t.derived]
    derived = [t for t in layout.terms if t.derived]
    by_term: dict[str, str] = {}
    for term, d in zip(plain, digits, strict=False):
        by_term[term.text] = term.labels[d]
    base = len(plain)
    for k, term in enumerate(derived):
        valid = digits[base + k]
        diff = digits[base + len(derived) + k] - OFFSET if valid == 2 else None
        by_term[term.text] = derived_label(term, diff)
    return tuple(by_term[t.text] for t in layout.terms)


def reference_labels(
    layout: GroupLayout, members: Mapping[str, Sequence[PersonRecord]], spec: QuerySpec
) -> tuple[str, ...]:
    """The cleartext labels of one entity (the reference the private tally must equal)."""
    if not layout.terms:
        return (TOTAL_LABEL,)
    out = []
    for term in layout.terms:
        if term.derived:
            (a, b), (fa, fb) = term.cohorts, term.fields
            da = person_days(members[a], fa) if a in members else None
            db = person_days(members[b], fb) if b in members else None
            out.append(derived_label(term, None if da is None or db is None else db - da))
        elif term.cohorts[0] in members:
            out.append(term_label(term, members[term.cohorts[0]], spec))
        else:
            out.append(ABSENT)
    return tuple(out)
