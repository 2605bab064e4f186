"""User-facing errors: a mistake in what the user asked for, reported as one clear line.

Anything else that is raised is a bug and keeps its traceback.
"""


class RnnexpError(Exception):
    """A user mistake (bad config value, unusable corpus, …); the message says what to change."""


class ConfigError(RnnexpError, ValueError):
    """A hyperparameter or option that cannot work."""


class CorpusError(RnnexpError):
    """A corpus that cannot be read, downloaded, verified or cut into sequences."""
