"""String-level errors of the realistic model: OCR misreads, phonetic respellings, digit slips.

Each function takes the value and uniform draws in [0, 1) made by the caller (so callers can
draw them vectorized) and returns the changed value, or None when the error cannot apply.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from crosstally.synth.corrupt import typo

# Glyphs an OCR engine confuses (ISRI's OCR accuracy tests list these among the commonest).
_OCR_LETTERS: tuple[tuple[str, str], ...] = (
    ("l", "1"), ("l", "|"), ("I", "l"), ("I", "1"), ("i", "l"), ("O", "0"), ("o", "0"),
    ("m", "rn"), ("rn", "m"), ("cl", "d"), ("d", "cl"), ("S", "5"), ("B", "8"), ("e", "c"),
    ("h", "b"), ("vv", "w"), ("w", "vv"), ("g", "9"), ("n", "ri"),
)  # fmt: skip
_OCR_DIGITS = {"0": "OD", "1": "lI|", "2": "Z", "5": "S", "6": "b", "8": "B", "9": "g"}
# Respellings that sound the same (one is applied; the first letter is kept).
_PHONETIC: tuple[tuple[str, str], ...] = (
    (r"ph", "f"), (r"f", "ph"), (r"ck", "k"), (r"c(?=[aou])", "k"), (r"k(?=[aou])", "c"),
    (r"z", "s"), (r"s(?=[aeiou])", "z"), (r"y", "i"), (r"i(?=[^aeiou]|$)", "y"),
    (r"ie$", "y"), (r"y$", "ie"), (r"ee", "ea"), (r"ea", "ee"), (r"ei", "ie"), (r"ie", "ei"),
    (r"son$", "sen"), (r"sen$", "son"), (r"([lnrst])\1", r"\1"),
    (r"(?<=[aeiou])([lnrt])(?=[aeiou])", r"\1\1"),
    (r"v", "b"), (r"b", "v"), (r"ll", "y"), (r"gh", ""), (r"x", "ks"), (r"qu", "k"),
    (r"th", "t"), (r"ou", "ow"), (r"ai", "ay"), (r"er$", "ar"), (r"ez$", "es"),
)  # fmt: skip
_PHONETIC_RULES = tuple((re.compile(p), r) for p, r in _PHONETIC)
_DIGIT_NEIGHBORS = {
    d: "".join(sorted({str((int(d) + s) % 10) for s in (-1, 1)})) for d in "0123456789"
}
UNIT_FORMS = ("Apt {}", "Unit {}", "#{}", "Apt {}A")
_UNIT = re.compile(r" (?:Apt|Unit|#)\s?\S+$", re.IGNORECASE)
_SUFFIXES = {"St": "Street", "Ave": "Avenue", "Rd": "Road", "Dr": "Drive", "Ln": "Lane",
             "Ct": "Court", "Pl": "Place", "Ter": "Terrace"}  # fmt: skip
_SHORT = {long.upper(): short for short, long in _SUFFIXES.items()}
_LONG = {short.upper(): long for short, long in _SUFFIXES.items()}


def _pick(options: Sequence[object], u: float) -> int:
    return min(int(u * len(options)), len(options) - 1)


def ocr_misread(name: str, u: float) -> str | None:
    """One OCR confusion in `name` (l->1, O->0, rn->m, a '|' ...), or None if none applies."""
    places = [
        (m.start(), glyph, read)
        for glyph, read in _OCR_LETTERS
        for m in re.finditer(re.escape(glyph), name)
    ]
    if not places:
        return None
    at, glyph, read = places[_pick(places, u)]
    return name[:at] + read + name[at + len(glyph) :]


def phonetic_respelling(name: str, u: float) -> str | None:
    """`name` respelled as it sounds (Philips -> Filips, Carlson -> Karlsen), or None."""
    head, tail = name[:1], name[1:].lower()
    options = []
    for pattern, replacement in _PHONETIC_RULES:
        changed = pattern.sub(replacement, tail, count=1)
        if changed != tail and len(changed) >= 1:
            options.append(changed)
    if not options:
        return None
    return head + options[_pick(options, u)]


def digit_slip(digit: str, u: float, v: float) -> str:
    """A mistyped digit: a neighbouring key 70% of the time, otherwise any other digit."""
    if u < 0.7:
        near = _DIGIT_NEIGHBORS[digit]
        return near[_pick(near, v)]
    others = [d for d in "0123456789" if d != digit]
    return others[_pick(others, v)]


def digits_slip(text: str, u: float, v: float, w: float) -> str:
    """`text` with one of its digits mistyped (other characters kept)."""
    places = [i for i, ch in enumerate(text) if ch.isdigit()]
    at = places[_pick(places, u)]
    return text[:at] + digit_slip(text[at], v, w) + text[at + 1 :]


def digits_transposed(text: str, u: float) -> str | None:
    """`text` with two adjacent, different digits swapped, or None if all are alike."""
    pairs = [
        i for i in range(len(text) - 1)
        if text[i].isdigit() and text[i + 1].isdigit() and text[i] != text[i + 1]
    ]  # fmt: skip
    if not pairs:
        return None
    i = pairs[_pick(pairs, u)]
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


def date_ocr(text: str, u: float, v: float) -> str:
    """A date string with one digit misread as a look-alike letter or sign."""
    places = [i for i, ch in enumerate(text) if ch in _OCR_DIGITS]
    at = places[_pick(places, u)]
    reads = _OCR_DIGITS[text[at]]
    return text[:at] + reads[_pick(reads, v)] + text[at + 1 :]


def _street(address: str) -> tuple[str, list[str], str]:
    """(house number, street words including the suffix, unit text with its leading space)."""
    unit = _UNIT.search(address)
    body, tail = (address[: unit.start()], address[unit.start() :]) if unit else (address, "")
    number, _, rest = body.partition(" ")
    return number, rest.split(" "), tail


def house_number_typo(address: str, u: float, v: float, w: float) -> str:
    """The house number mistyped: a digit slipped, dropped, doubled or two swapped."""
    number, _, rest = address.partition(" ")
    if u < 0.15 and len(number) >= 2:
        at = _pick(number, v)
        number = number[:at] + number[at + 1 :]
    elif u < 0.3:
        at = _pick(number, v)
        number = number[: at + 1] + number[at:]
    elif u < 0.45 and (swapped := digits_transposed(number, v)) is not None:
        number = swapped
    else:
        number = digits_slip(number, v, w, u)
    return f"{number} {rest}"


def street_typo(address: str, op: int, spot: float, pick: float) -> str:
    """A keyboard slip in the street name (not in the number, suffix or unit)."""
    number, words, tail = _street(address)
    names = [i for i, word in enumerate(words[:-1]) if word.isalpha() and len(word) >= 2] or [0]
    at = names[_pick(names, spot)]
    words[at] = typo(words[at], op, spot * len(names) % 1.0, pick)
    return f"{number} {' '.join(words)}{tail}"


def split_or_merge(address: str, u: float) -> str:
    """Street words merged (Oak Ridge -> Oakridge, Main St -> MainSt) or one split in two."""
    number, words, tail = _street(address)
    long = [i for i, word in enumerate(words) if len(word) >= 6 and word.isalpha()]
    if long and (u < 0.5 or len(words) < 2):
        i = long[_pick(long, u * 2 % 1.0)]
        word = words[i]
        cut = 3 + _pick(range(len(word) - 5), u)
        second = word[cut:] if word.isupper() else word[cut:].capitalize()
        words[i : i + 1] = [word[:cut], second]
    elif len(words) > 1:
        i = _pick(range(len(words) - 1), u)
        merged = words[i] + (words[i + 1] if words[i].isupper() else words[i + 1].lower())
        words[i : i + 2] = [merged]
    return f"{number} {' '.join(words)}{tail}"


def toggle_unit(address: str, u: float) -> str:
    """The unit dropped when there is one, or a unit added when there is none."""
    number, words, tail = _street(address)
    if tail:
        return f"{number} {' '.join(words)}"
    unit = UNIT_FORMS[_pick(UNIT_FORMS, u)].format(1 + int(u * 997) % 30)
    return f"{address} {unit.upper() if address.isupper() else unit}"


def toggle_suffix(address: str) -> str | None:
    """The street suffix in the other form (St <-> Street), keeping case; None if none."""
    number, words, tail = _street(address)
    key = words[-1].upper()
    other = _LONG.get(key) or _SHORT.get(key)
    if other is None or len(words) < 2:
        return None
    words[-1] = other.upper() if words[-1].isupper() else other
    return f"{number} {' '.join(words)}{tail}"
