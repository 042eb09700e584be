"""Errors a user can fix: the command line prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input (a config key, a value, a data folder, a run id): the message names the fix."""


class ConfigError(UserError):
    """An experiment file or a key=value override that does not fit the configuration."""


class DataError(UserError):
    """A data source that cannot be read: missing, offline, malformed or truncated."""
