"""The one error type users see.

Every check on user input (config, files, graph) raises :class:`GraphRecError` with a
message that says *what* is wrong and *where* (file, column, row, config key). The CLI
prints it as one line and exits with status 2; nothing is written after it is raised.
"""


class GraphRecError(Exception):
    """Bad input, explained in one line: what is wrong and where."""


class ConfigError(GraphRecError):
    """A config file or override that does not fit the schema."""


class DataError(GraphRecError):
    """Graph data that cannot be used: a missing column, a bad value, a dangling edge."""
