"""Vectorized date helpers over numpy datetime64[D] arrays (NaT means no such event)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt

DateArray = npt.NDArray[np.datetime64]
NAT = np.datetime64("NaT", "D")
DAYS_PER_YEAR = 365.2425


def day(value: dt.date) -> np.datetime64:
    return np.datetime64(value.isoformat(), "D")


def ymd(
    dates: DateArray,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Year, month (1-12) and day (1-31) of each date; undefined for NaT."""
    months = dates.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day_of_month = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day_of_month


def from_ymd(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64], day_of_month: npt.NDArray[np.int64]
) -> DateArray:
    """Dates from parts; the caller guarantees the parts form valid dates."""
    months = (year - 1970) * 12 + (month - 1)
    first = months.astype("datetime64[M]").astype("datetime64[D]")
    out: DateArray = first + (day_of_month - 1).astype("timedelta64[D]")
    return out


def days_in_month(
    year: npt.NDArray[np.int64], month: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    first = from_ymd(year, month, np.ones_like(month))
    nxt = (first.astype("datetime64[M]") + 1).astype("datetime64[D]")
    return (nxt - first).astype(np.int64)


def age_years(dob: DateArray, on: dt.date) -> npt.NDArray[np.int64]:
    """Completed years of age on `on`."""
    year, month, day_of_month = ymd(dob)
    before_birthday = (on.month < month) | ((on.month == month) & (on.day < day_of_month))
    return on.year - year - before_birthday.astype(np.int64)


def plus_years(dates: DateArray, years: npt.NDArray[np.float64]) -> DateArray:
    """Each date plus a fractional number of years (rounded to whole days)."""
    offsets = np.rint(years * DAYS_PER_YEAR).astype(np.int64)
    out: DateArray = dates + offsets.astype("timedelta64[D]")
    return out


def censor(dates: DateArray, on: dt.date) -> DateArray:
    """Events after `on` have not happened yet: replace them by NaT."""
    out = dates.copy()
    out[out > day(on)] = NAT
    return out


def iso(dates: DateArray) -> npt.NDArray[np.object_]:
    """ISO `YYYY-MM-DD` strings; NaT becomes the empty string."""
    text = np.datetime_as_string(dates, unit="D").astype(object)
    text[np.isnat(dates)] = ""
    return text
