"""Synthetic Connecticut youth population and agency extracts with ground truth.

`generate` draws a population, its true histories and seven agency extracts (DCF, JB-CSSD,
CSDE, DSS, DOL, DOC, higher education) with realistic data-entry errors; `write_world` writes
them as CSVs plus `truth.csv`; `make_pair` draws two record lists with a known overlap for
linkage tests. Calibration targets are in `calibration`, error rates in `errors` (the default
`independent` model) and `realistic` (errors that come together in careless records).
"""

from crosstally.synth.agencies import AGENCIES, CANONICAL_COLUMNS, Agency, AgencyExtract
from crosstally.synth.errors import (
    AGENCY_ERRORS,
    ERROR_CLASSES,
    ERROR_MODELS,
    ERROR_PROFILES,
    TYPICAL_ERRORS,
    ErrorKind,
    ErrorRates,
    error_classes,
)
from crosstally.synth.facts import PersonFacts
from crosstally.synth.pair import make_pair, make_parties
from crosstally.synth.population import People
from crosstally.synth.world import AS_OF, SyntheticWorld, generate
from crosstally.synth.write import TRUTH_FILE, write_world

__all__ = [
    "AGENCIES",
    "AGENCY_ERRORS",
    "AS_OF",
    "CANONICAL_COLUMNS",
    "ERROR_CLASSES",
    "ERROR_MODELS",
    "ERROR_PROFILES",
    "TRUTH_FILE",
    "TYPICAL_ERRORS",
    "Agency",
    "AgencyExtract",
    "ErrorKind",
    "ErrorRates",
    "People",
    "PersonFacts",
    "SyntheticWorld",
    "error_classes",
    "generate",
    "make_pair",
    "make_parties",
    "write_world",
]
