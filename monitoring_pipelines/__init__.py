"""monitoring_pipelines: the operational layer for ML models in production, built on Dagster.

Importing the package is cheap on purpose: heavy libraries (Evidently, Great Expectations, MLflow,
scikit-learn) are imported inside the functions that use them, so that the code location loads fast and
sensor ticks never pay for them.
"""

__version__ = "0.1.0"
