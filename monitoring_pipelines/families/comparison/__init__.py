"""The comparison family (see families/base.py). Importing the package registers its metric names."""

from monitoring_pipelines.families.comparison import names  # noqa: F401 - registers the family's metric names
