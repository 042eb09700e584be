"""Errors a user can fix: the command line prints them as one line and exits with code 2."""

from rnnbench import credentials


class UserError(Exception):
    """Bad input (a config key, a value, a data folder, a run id): the message names the fix, with any password in a
    URL masked (`credentials.mask`)."""

    def __init__(self, message: str):
        super().__init__(credentials.mask(message))


class ConfigError(UserError):
    """An experiment file or a key=value override that does not fit the configuration."""


class DataError(UserError):
    """A data source that cannot be read: missing, offline, malformed or truncated."""
