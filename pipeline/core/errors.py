"""Errors a user can fix: each carries a one-line message that names what is wrong."""


class LabError(Exception):
    """Bad input: reported as one line and a non-zero exit, never as a traceback."""


class ConfigError(LabError):
    """`params.yaml` is unreadable or invalid."""


class DataError(LabError):
    """A data file or prepared split is missing or unusable."""


class TrackingError(LabError):
    """The MLflow store cannot be used as configured."""
