"""The demo: UCI Adult data, the ``adult_income`` training recipe and a 30-day production scenario.

``load_adult()`` returns the bundled, cleaned copy of UCI Adult (see ``demo/data/README.md`` for the
attribution and how it was derived). Heavy libraries are imported inside functions, as everywhere else.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ADULT_CSV = Path(__file__).parent / "data" / "adult.csv.gz"

_CATEGORICAL = [
    "workclass",
    "education",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native_country",
    "source",
]


def load_adult() -> pd.DataFrame:
    """The 48,842 rows of UCI Adult (``adult.data`` then ``adult.test``), ``label`` = 1 for income > 50K.

    Missing values (``?`` in the raw files) are NaN; ``source`` says which raw file a row came from.
    """
    return pd.read_csv(ADULT_CSV, dtype={c: "object" for c in _CATEGORICAL} | {"label": "int8"})
