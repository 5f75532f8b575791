"""Reference data the product reads at run time: the province and its cities (GB/T 2260 codes).

Here rather than in ``seed`` because the running product needs it (an authority is created for a
city, an enterprise is routed by its city); the demo and scale seeds read it from here too.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path


def cities_csv() -> Path:
    """shared/data/shandong-cities.csv beside the repository, or the copy beside this module when
    deployed; ``CITIES_CSV`` overrides both."""
    env = os.environ.get("CITIES_CSV")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "shared" / "data" / "shandong-cities.csv", here / "shandong-cities.csv"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("shandong-cities.csv not found")


def load_cities() -> list[dict]:
    """The province first, then its 16 cities (莱芜 merged into 济南 in 2019 is not in the file)."""
    with open(cities_csv(), encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
