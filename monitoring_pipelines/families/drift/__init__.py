"""The drift family (see families/base.py). Importing the package registers its metric names."""

from monitoring_pipelines.families.drift import names  # noqa: F401 - registers the family's metric names
