"""Draw every person's agency-recorded history, calibrated to published Connecticut figures.

Calibration (targets are what `generate` produces at the default ages 8-26 on 2026-06-30; the
tests check them at 20,000 people):

| quantity | target | source |
|---|---|---|
| ever DCF-involved (substantiated or placed), age 18+ | ~6.5% | CT DCF, 5-8% of children |
| crossover: DCF-involved with a juvenile case, age 18+ | ~17% | UConn 2015, 1996 births |
| crossover entering child welfare first | ~90% | UConn 2015 |
| years from first DCF contact to first case (DCF first) | ~8 | UConn 2015 |
| crossover entering juvenile justice first | ~9% | UConn 2015 |
| years from first case to first substantiation (JJ first) | ~1 | UConn 2015 |
| same-day entry | ~1% | |
| any juvenile case (all ages, as observed) | ~4-6% | JB-CSSD caseloads |
| public-school (CSDE) record | ~90% | CT private/home school ~10% |
| free/reduced meal among enrolled | ~40% | CSDE |
| SNAP among free/reduced-meal students | ~70% | P-EBT direct certification |
| SNAP, all youth | ~20-25% | DSS |
| employed in latest quarter | rises from ~3% at 14 to ~75% at 23+ | DOL UI wages |
| currently incarcerated, 18-26 | ~0.6% (~1.2% with any DOC record) | CT DOC |
| enrolled in postsecondary, 18-24 | ~45% | NCES, CT |
| at risk or disconnected, 14-26 | ~19% | BCG 2023: 119,000 of 615,000 |

Event dates are consistent with DOB: DCF events before age 18, juvenile cases from age 10 to
17, DOC admissions from 18, nothing after `as_of` (later events are censored, so younger people
show fewer of them). "Disconnected" uses only facts an agency records (see `disconnected`).
"""

from __future__ import annotations

import numpy as np

from crosstally.synth import dates, reference
from crosstally.synth.facts import (
    ChildWelfare,
    Corrections,
    JuvenileJustice,
    PersonFacts,
    Postsecondary,
    School,
    SocialServices,
    Wages,
)
from crosstally.synth.population import People
from crosstally.synth.reference import BoolArray, FloatArray

P_DCF_INVOLVED = {"low_income": 0.13, "other": 0.035}  # lifetime, by 18
P_DCF_REPORT_ONLY = {"low_income": 0.15, "other": 0.05}  # unsubstantiated allegations only
P_CROSSOVER = 0.17  # of DCF-involved youth, scaled 1.2 for boys, 0.8 for girls
ENTRY_ORDER = {"dcf_first": 0.90, "jj_first": 0.09, "same": 0.01}
YEARS_DCF_TO_JJ = (8.2, 2.6)  # normal mean, sd
YEARS_JJ_TO_DCF = 1.0  # mean of a gamma(2) gap
# Lifetime juvenile-case probability of youth never DCF-involved; x1.4 boys, x0.6 girls, x1.55
# low income, x0.74 otherwise.
P_JUVENILE_CASE = 0.085
DCF_KINDS = {"substantiated": 0.62, "substantiated_and_placed": 0.26, "placed": 0.12}
OFFENSE_TYPES = {
    "property": 0.30,
    "person": 0.25,
    "public_order": 0.18,
    "status": 0.12,
    "drug": 0.10,
    "weapons": 0.05,
}
P_PUBLIC_SCHOOL = 0.90
P_RETAINED = {"low_income": 0.11, "other": 0.05}
P_NO_DIPLOMA = {"low_income": 0.16, "other": 0.06}  # x1.8 with a juvenile case, x1.3 DCF
P_AT_RISK = 0.10  # of enrolled students; x1.9/x0.8 income, x1.6 DCF, x2.2 juvenile case
P_FREE_REDUCED_MEAL = {"low_income": 0.92, "other": 0.17}
P_SNAP = {"frl_student": 0.70, "other_student": 0.04, "low_income": 0.45, "other": 0.03}
P_MEDICAID = {"snap": 0.95, "low_income": 0.75, "other": 0.10}
EMPLOYED_BY_AGE = {14: 0.03, 15: 0.08, 16: 0.22, 17: 0.33, 18: 0.50, 19: 0.60, 20: 0.66, 21: 0.70,
                   22: 0.73, 23: 0.76, 24: 0.77, 25: 0.78, 26: 0.79}  # fmt: skip
POSTSECONDARY_BY_AGE = {18: 0.66, 19: 0.66, 20: 0.64, 21: 0.62, 22: 0.50, 23: 0.36, 24: 0.30,
                        25: 0.18, 26: 0.15}  # fmt: skip
P_DOC = {"juvenile_record": 0.13, "other": 0.0035}  # by ~23; x1.8 men, x0.2 women


def draw_facts(rng: np.random.Generator, people: People) -> PersonFacts:
    """Draw every person's agency-recorded history up to `people.as_of`."""
    years = (dates.day(people.as_of) - people.dob).astype(np.float64) / dates.DAYS_PER_YEAR
    dcf, t_juvenile, juvenile_life = _child_welfare(rng, people)
    jbcssd = _juvenile_justice(rng, people, years, t_juvenile, juvenile_life)
    csde = _school(rng, people, dcf.involved, jbcssd.record)
    dss = _social_services(rng, people, years, csde)
    doc = _corrections(rng, people, years, jbcssd.record)
    true_diploma = csde.diploma | (
        ~csde.record & (people.age >= 18) & (rng.random(len(people)) < 0.93)
    )
    highered = _postsecondary(rng, people, csde.enrolled, true_diploma, doc.incarcerated)
    dol = _wages(rng, people, csde, highered.enrolled, doc.incarcerated)
    return PersonFacts(people.age, dcf, jbcssd, csde, dss, dol, doc, highered)


def _by_income(people: People, table: dict[str, float]) -> FloatArray:
    return np.where(people.low_income, table["low_income"], table["other"])


def _at(
    dob: dates.DateArray, years: FloatArray, mask: BoolArray, people: People
) -> dates.DateArray:
    """Dates `years` after birth where `mask`, NaT elsewhere and after `as_of`."""
    out = dates.censor(dates.plus_years(dob, np.where(mask, years, 0.0)), people.as_of)
    out[~mask] = dates.NAT
    return out


def _child_welfare(
    rng: np.random.Generator, people: People
) -> tuple[ChildWelfare, FloatArray, BoolArray]:
    n = len(people)
    male = people.sex == "M"
    low = people.low_income
    involved = rng.random(n) < _by_income(people, P_DCF_INVOLVED)
    cross = involved & (rng.random(n) < P_CROSSOVER * np.where(male, 1.2, 0.8))
    r = rng.random(n)
    dcf_first = cross & (r < ENTRY_ORDER["dcf_first"])
    jj_first = cross & (r >= ENTRY_ORDER["dcf_first"]) & (r < 1 - ENTRY_ORDER["same"])
    same = cross & ~dcf_first & ~jj_first

    p_case = P_JUVENILE_CASE * np.where(male, 1.4, 0.6) * np.where(low, 1.55, 0.74)
    juvenile = cross | (~involved & (rng.random(n) < p_case))
    t_case = 10.0 + 7.9 * rng.beta(2.2, 1.5, n)

    t_dcf = 18.0 * rng.beta(1.1, 1.6, n)
    gap = np.maximum(rng.normal(*YEARS_DCF_TO_JJ, n), 0.5)
    t_dcf = np.where(dcf_first, np.maximum(t_case - gap, 0.02), t_dcf)
    later = np.minimum(t_case + 0.02 + rng.gamma(2.0, YEARS_JJ_TO_DCF / 2, n), 17.99)
    t_dcf = np.where(jj_first, later, t_dcf)
    t_dcf = np.where(same, t_case, t_dcf)

    k = rng.random(n)
    placed_only = involved & (k >= 1 - DCF_KINDS["placed"]) & ~jj_first & ~same
    both = involved & ~placed_only & (k >= DCF_KINDS["substantiated"])
    substantiated = involved & ~placed_only
    later_placement = np.maximum(t_dcf, np.minimum(t_dcf + rng.uniform(0, 2, n), 17.99))
    t_place = np.where(placed_only, t_dcf, later_placement)
    earlier = substantiated & (rng.random(n) < 0.35)
    t_allegation = np.where(earlier, np.maximum(t_dcf - rng.uniform(0, 3, n), 0.0), t_dcf)
    reported = ~involved & (rng.random(n) < _by_income(people, P_DCF_REPORT_ONLY))
    t_allegation = np.where(reported, 18.0 * rng.beta(1.1, 1.6, n), t_allegation)

    first_allegation = _at(people.dob, t_allegation, involved | reported, people)
    count = 1 + rng.poisson(np.where(involved, 1.4, 0.4))
    welfare = ChildWelfare(
        record=~np.isnat(first_allegation),
        allegation_count=np.where(np.isnat(first_allegation), 0, count).astype(np.int64),
        first_allegation=first_allegation,
        first_substantiated=_at(people.dob, t_dcf, substantiated, people),
        first_placement=_at(people.dob, t_place, both | placed_only, people),
    )
    return welfare, t_case, juvenile


def _juvenile_justice(
    rng: np.random.Generator,
    people: People,
    years: FloatArray,
    t_case: FloatArray,
    juvenile: BoolArray,
) -> JuvenileJustice:
    n = len(people)
    first_case = _at(people.dob, t_case, juvenile, people)
    has = ~np.isnat(first_case)
    elapsed = np.clip((years - t_case) / (18.0 - t_case), 0.0, 1.0)
    cases = np.where(has, 1 + rng.poisson(1.0 * elapsed), 0).astype(np.int64)
    kinds = np.array(list(OFFENSE_TYPES), dtype=object)
    pick = np.searchsorted(np.cumsum(list(OFFENSE_TYPES.values())), rng.random(n), side="right")
    offense = np.where(has, kinds[np.minimum(pick, len(kinds) - 1)], "").astype(object)
    return JuvenileJustice(cases=cases, first_case=first_case, first_offense_type=offense)


def _school(
    rng: np.random.Generator, people: People, dcf_involved: BoolArray, juvenile: BoolArray
) -> School:
    n = len(people)
    as_of = people.as_of
    school_year = as_of.year if as_of.month >= 7 else as_of.year - 1
    birth_year, _, _ = dates.ymd(people.dob)
    public = rng.random(n) < P_PUBLIC_SCHOOL
    retained = rng.random(n) < _by_income(people, P_RETAINED)
    grade = school_year - birth_year - 5 - retained.astype(np.int64)
    p_drop = _by_income(people, P_NO_DIPLOMA) * np.where(juvenile, 1.8, 1.0)
    p_drop = np.minimum(p_drop * np.where(dcf_involved, 1.3, 1.0), 0.6)
    will_drop = rng.random(n) < p_drop
    drop_grade = rng.integers(9, 13, n)
    dropped = will_drop & (grade > drop_grade)
    extended = ~will_drop & (rng.random(n) < 0.02) & (grade > 12) & (people.age <= 21)
    enrolled = public & (((grade <= 12) & ~dropped) | extended)
    diploma = public & ~will_drop & (grade > 12) & ~enrolled

    grade_text = np.full(n, "", dtype=object)
    shown = np.where(enrolled, np.minimum(grade, 12), np.where(dropped, drop_grade, 12))
    grade_text[public] = [str(g) if g > 0 else "K" for g in shown[public].tolist()]

    p_risk = P_AT_RISK * np.where(people.low_income, 1.9, 0.8) * np.where(dcf_involved, 1.6, 1.0)
    p_risk = np.minimum(p_risk * np.where(juvenile, 2.2, 1.0), 0.7)
    codes = np.array([f"{c:03d}0011" for c in _town_codes()], dtype=object)
    return School(
        record=public,
        enrolled=enrolled,
        grade=grade_text,
        at_risk=enrolled & (rng.random(n) < p_risk),
        diploma=diploma,
        district=np.where(public, codes[people.town_index], "").astype(object),
        free_reduced_meal=enrolled & (rng.random(n) < _by_income(people, P_FREE_REDUCED_MEAL)),
    )


def _town_codes() -> list[int]:
    return [int(c) for c in reference.towns().code.tolist()]


def _social_services(
    rng: np.random.Generator, people: People, years: FloatArray, school: School
) -> SocialServices:
    n = len(people)
    frl = school.free_reduced_meal
    p_student = np.where(frl, P_SNAP["frl_student"], P_SNAP["other_student"])
    p_snap = np.where(school.enrolled, p_student, _by_income(people, P_SNAP))
    snap = rng.random(n) < p_snap
    former = ~snap & (rng.random(n) < np.where(people.low_income, 0.25, 0.04))
    p_medicaid = np.where(snap, P_MEDICAID["snap"], _by_income(people, P_MEDICAID))
    medicaid = rng.random(n) < p_medicaid
    start_age = np.maximum(years - rng.exponential(3.0, n), 0.0)
    return SocialServices(
        record=snap | former | medicaid,
        snap=snap,
        snap_start=_at(people.dob, start_age, snap, people),
        medicaid=medicaid,
    )


def _corrections(
    rng: np.random.Generator, people: People, years: FloatArray, juvenile: BoolArray
) -> Corrections:
    n = len(people)
    adult_years = np.maximum(years - 18.0, 0.0)
    p = np.where(juvenile, P_DOC["juvenile_record"], P_DOC["other"])
    p = p * np.where(people.sex == "M", 1.8, 0.2) * np.minimum(adult_years / 5.0, 1.0)
    admitted = rng.random(n) < p
    t_admit = 18.0 + rng.uniform(0.0, 1.0, n) * adult_years
    admission = _at(people.dob, t_admit, admitted, people)
    release = _at(people.dob, t_admit + rng.exponential(2.0, n), admitted, people)
    return Corrections(record=~np.isnat(admission), admission=admission, release=release)


def _age_table(people: People, table: dict[int, float]) -> FloatArray:
    lookup = np.zeros(max(table) + 2)
    for age, p in table.items():
        lookup[age] = p
    lookup[-1] = table[max(table)]
    return lookup[np.clip(people.age, 0, len(lookup) - 1)]


def _postsecondary(
    rng: np.random.Generator,
    people: People,
    in_high_school: BoolArray,
    diploma: BoolArray,
    incarcerated: BoolArray,
) -> Postsecondary:
    n = len(people)
    p = _age_table(people, POSTSECONDARY_BY_AGE) * np.where(people.low_income, 0.75, 1.12)
    eligible = diploma & ~incarcerated & ~in_high_school
    enrolled = eligible & (rng.random(n) < p)
    p_training = np.where(people.low_income, 0.05, 0.025)
    training = ~enrolled & ~incarcerated & ~in_high_school & (people.age >= 16)
    training &= rng.random(n) < p_training
    former = eligible & ~enrolled & (people.age >= 19) & (rng.random(n) < 0.35)
    institution = reference.institutions("college").draw(rng, n)
    institution[training] = reference.institutions("training").draw(rng, int(training.sum()))
    record = enrolled | training | former
    institution[~record] = ""
    return Postsecondary(
        record=record, enrolled=enrolled, training=training, institution=institution
    )


def _wages(
    rng: np.random.Generator,
    people: People,
    school: School,
    in_college: BoolArray,
    incarcerated: BoolArray,
) -> Wages:
    n = len(people)
    base = _age_table(people, EMPLOYED_BY_AGE)
    out_no_diploma = school.record & ~school.enrolled & ~school.diploma
    p = base * np.where(in_college, 0.8, 1.0) * np.where(out_no_diploma, 0.7, 1.0)
    p = p * np.where(people.low_income, 0.9, 1.04) * ~incarcerated
    employed = rng.random(n) < p
    earlier = ~employed & (rng.random(n) < 0.35 * base)
    quarters = np.where(employed, 1 + rng.binomial(3, 0.8, n), 1 + rng.binomial(2, 0.4, n))
    median = np.where(people.age < 18, 1800.0, np.where(people.age < 22, 4800.0, 8500.0))
    amount = median * (0.5 + quarters / 8.0) * np.exp(rng.normal(0.0, 0.6, n))
    record = employed | earlier
    return Wages(
        record=record,
        employed=employed,
        quarters_employed=np.where(record, quarters, 0).astype(np.int64),
        wages_last_quarter=np.where(employed, np.rint(amount), 0).astype(np.int64),
    )
