"""`generate`: a synthetic population, its true histories and the seven agency extracts."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from crosstally.synth.agencies import AGENCIES, AgencyExtract, build_extract
from crosstally.synth.calibration import draw_facts
from crosstally.synth.errors import AGENCY_ERRORS, ERROR_MODELS, ErrorRates
from crosstally.synth.facts import PersonFacts
from crosstally.synth.population import People, draw_people
from protocol.records import PersonRecord

AS_OF = dt.date(2026, 6, 30)
DEFAULT_AGES = (8, 26)
_POPULATION_STREAM, _FACTS_STREAM, _AGENCY_STREAM = 1, 2, 3


def stream(seed: int, *key: int) -> np.random.Generator:
    """An independent random stream for one part of the generator, fixed by `seed` and `key`."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


class Extracts(Mapping[str, list[PersonRecord]]):
    """Agency code to its records as `PersonRecord`s, built on first access and then kept."""

    def __init__(self, tables: Mapping[str, AgencyExtract]) -> None:
        self._tables = tables
        self._built: dict[str, list[PersonRecord]] = {}

    def __getitem__(self, agency: str) -> list[PersonRecord]:
        if agency not in self._built:
            self._built[agency] = self._tables[agency].records()
        return self._built[agency]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)


@dataclass(frozen=True)
class SyntheticWorld:
    """A synthetic population with ground truth.

    `people` holds true identities and `facts` true per-person histories (arrays indexed by
    person); `tables` the agency extracts column-wise; `extracts` the same as `PersonRecord`
    lists; `record_person` maps agency -> record_id -> true person index; `error_model` says
    how the extracts were corrupted (`independent` or `realistic`).
    """

    seed: int
    as_of: dt.date
    people: People
    facts: PersonFacts
    tables: dict[str, AgencyExtract]
    error_model: str = "independent"

    @functools.cached_property
    def extracts(self) -> Extracts:
        return Extracts(self.tables)

    @functools.cached_property
    def record_person(self) -> dict[str, dict[str, int]]:
        return {
            code: dict(zip(table.record_ids(), table.person_index.tolist(), strict=True))
            for code, table in self.tables.items()
        }

    def global_id(self, person: int) -> str:
        """The true global person id (`P0000123`) of person index `person`."""
        return self.people.global_id(person)


def generate(
    *,
    people: int,
    seed: int,
    as_of: dt.date = AS_OF,
    ages: tuple[int, int] = DEFAULT_AGES,
    errors: Mapping[str, ErrorRates] = AGENCY_ERRORS,
    error_model: str = "independent",
) -> SyntheticWorld:
    """Generate `people` youths aged `ages` on `as_of` and every agency's extract of them.

    The same arguments always give the same world. `errors` overrides the per-agency error
    rates (e.g. `{code: ErrorRates() for code in AGENCIES}` for error-free extracts).
    `error_model` is `independent` (every error drawn on its own at those rates) or
    `realistic` (errors come together in careless records; the rates then give each agency's
    conventions and quality, see `crosstally.synth.realistic`).
    """
    if people < 1:
        raise ValueError(f"people must be at least 1, got {people}")
    if not 0 <= ages[0] <= ages[1]:
        raise ValueError(
            f"ages must be (youngest, oldest) with 0 <= youngest <= oldest, got {ages}"
        )
    if error_model not in ERROR_MODELS:
        known = ", ".join(ERROR_MODELS)
        raise ValueError(f"unknown error_model {error_model!r}; expected one of {known}")
    missing = set(AGENCIES) - set(errors)
    if missing:
        raise ValueError(f"errors has no rates for {', '.join(sorted(missing))}")
    population = draw_people(stream(seed, _POPULATION_STREAM), people, as_of=as_of, ages=ages)
    facts = draw_facts(stream(seed, _FACTS_STREAM), population)
    tables = {
        code: build_extract(
            stream(seed, _AGENCY_STREAM, i), agency, population, facts, errors[code], error_model
        )
        for i, (code, agency) in enumerate(AGENCIES.items())
    }
    return SyntheticWorld(
        seed=seed,
        as_of=as_of,
        people=population,
        facts=facts,
        tables=tables,
        error_model=error_model,
    )
