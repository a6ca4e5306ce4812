"""Query templates shipped with crosstally: crossover youth, disconnected youth, P-EBT."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

TEMPLATES = ("crossover-youth", "disconnected-youth", "pebt-match")


def load_template(name: str) -> dict[str, Any]:
    """A template's spec document by name (see `TEMPLATES`)."""
    if name not in TEMPLATES:
        raise KeyError(f"unknown template {name!r}; templates: {', '.join(TEMPLATES)}")
    text = resources.files("crosstally").joinpath("templates", f"{name}.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data
