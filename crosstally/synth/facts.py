"""True per-person facts behind the agency extracts: one array per fact, indexed by person.

`calibration.draw_facts` draws them; the derived cohorts (`crossover`, `entry_order`,
`disconnected`) are defined here, from the facts the agencies record.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from crosstally.synth import dates
from crosstally.synth.reference import BoolArray, FloatArray, IntArray, ObjectArray


@dataclass(frozen=True)
class ChildWelfare:
    record: BoolArray
    allegation_count: IntArray
    first_allegation: dates.DateArray
    first_substantiated: dates.DateArray
    first_placement: dates.DateArray

    @property
    def substantiated(self) -> BoolArray:
        return ~np.isnat(self.first_substantiated)

    @property
    def placed(self) -> BoolArray:
        return ~np.isnat(self.first_placement)

    @property
    def involved(self) -> BoolArray:
        return self.substantiated | self.placed

    @property
    def first_contact(self) -> dates.DateArray:
        return np.fmin(self.first_substantiated, self.first_placement)


@dataclass(frozen=True)
class JuvenileJustice:
    cases: IntArray
    first_case: dates.DateArray
    first_offense_type: ObjectArray

    @property
    def record(self) -> BoolArray:
        return self.cases > 0


@dataclass(frozen=True)
class School:
    record: BoolArray
    enrolled: BoolArray
    grade: ObjectArray
    at_risk: BoolArray
    diploma: BoolArray
    district: ObjectArray
    free_reduced_meal: BoolArray


@dataclass(frozen=True)
class SocialServices:
    record: BoolArray
    snap: BoolArray
    snap_start: dates.DateArray
    medicaid: BoolArray


@dataclass(frozen=True)
class Wages:
    record: BoolArray
    employed: BoolArray
    quarters_employed: IntArray
    wages_last_quarter: IntArray


@dataclass(frozen=True)
class Corrections:
    record: BoolArray
    admission: dates.DateArray
    release: dates.DateArray

    @property
    def incarcerated(self) -> BoolArray:
        return self.record & np.isnat(self.release)


@dataclass(frozen=True)
class Postsecondary:
    record: BoolArray
    enrolled: BoolArray
    training: BoolArray
    institution: ObjectArray


@dataclass(frozen=True)
class PersonFacts:
    """Everything the agencies know about each person, before data-entry errors."""

    age: IntArray
    dcf: ChildWelfare
    jbcssd: JuvenileJustice
    csde: School
    dss: SocialServices
    dol: Wages
    doc: Corrections
    highered: Postsecondary

    @functools.cached_property
    def crossover(self) -> BoolArray:
        return self.dcf.involved & self.jbcssd.record

    @functools.cached_property
    def entry_order(self) -> ObjectArray:
        """`dcf_first`, `jj_first` or `same` for crossover youth, else empty."""
        first_dcf, first_jj = self.dcf.first_contact, self.jbcssd.first_case
        order = np.full(len(self.age), "", dtype=object)
        order[self.crossover & (first_dcf < first_jj)] = "dcf_first"
        order[self.crossover & (first_dcf > first_jj)] = "jj_first"
        order[self.crossover & (first_dcf == first_jj)] = "same"
        return order

    @functools.cached_property
    def years_between(self) -> FloatArray:
        """Years between first DCF contact and first juvenile case (NaN unless crossover)."""
        gap = np.abs(self.jbcssd.first_case - self.dcf.first_contact).astype(np.float64)
        return np.where(self.crossover, gap / dates.DAYS_PER_YEAR, np.nan)

    @functools.cached_property
    def disconnected(self) -> BoolArray:
        """Aged 14-26 and at risk or disconnected, as the agencies' records show it.

        At-risk student; or out of high school without a diploma; or with a diploma but not
        employed (DOL, latest quarter) and not in postsecondary or training; or incarcerated.
        """
        school = self.csde
        idle = school.diploma & ~self.dol.employed & ~self.highered.enrolled
        idle &= ~self.highered.training
        out = school.at_risk | (school.record & ~school.enrolled & ~school.diploma) | idle
        return (self.age >= 14) & (self.age <= 26) & (out | self.doc.incarcerated)
