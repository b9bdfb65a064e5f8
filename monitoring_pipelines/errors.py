"""One exception hierarchy for the project. Every message names the model, day, column or plan field."""


class MonitoringError(Exception):
    """Base class of every error this project raises on purpose."""


class PlanError(MonitoringError):
    """A monitoring plan is invalid. ``problems`` holds one ``(file, field path, message)`` per mistake."""

    def __init__(self, problems: list[tuple[str, str, str]]):
        self.problems = problems
        lines = [f"{file}: {field or '<plan>'}: {message}" for file, field, message in problems]
        super().__init__(f"{len(problems)} problem(s) in monitoring plan(s):\n  " + "\n  ".join(lines))


class DataSourceError(MonitoringError):
    """A prediction log, label or reference source cannot be read, or lacks what the plan promises."""


class StoreError(MonitoringError):
    """The metric store cannot be reached, migrated or written."""


class RegistryError(MonitoringError):
    """The MLflow registry lacks a model, alias or artifact the plan needs."""


class ActionRefused(MonitoringError):
    """A retrain / promote / rollback precondition does not hold; the message says which."""


class BlockedDayError(MonitoringError):
    """A day's blocking quality checks failed, so figures that feed decisions are not computed for it."""
