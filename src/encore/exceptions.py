"""All of encore's own errors. Catch :class:`EncoreError` to catch any of them."""


class EncoreError(Exception):
    """Root of every error encore raises on purpose."""


class ParameterError(EncoreError, ValueError):
    """A setting or argument has a bad value; the message names it and the fix."""


class ConfigError(ParameterError):
    """A configuration file or override is invalid."""


class AudioDecodeError(EncoreError):
    """An audio file or buffer could not be decoded into a usable waveform."""


class FeedbackDataError(EncoreError):
    """A feedback or catalogue file cannot be read as a whole (a bad row is quarantined instead)."""


class StoreError(EncoreError):
    """The feedback store cannot be opened or written."""


class CheckpointError(EncoreError):
    """A checkpoint is missing, corrupt, or lacks its model card."""


class WorkspaceError(EncoreError):
    """A workspace folder is missing or not an encore workspace."""
