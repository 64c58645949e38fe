"""Errors raised when an ObMan split on disk is not what the reader expects."""

__all__ = ["ObManFormatError", "UnsafePickleError"]


class ObManFormatError(ValueError):
    """A file of an ObMan split is missing, truncated or not in ObMan's format; the message names the file."""


class UnsafePickleError(ObManFormatError):
    """A pickle asked to build something other than numpy arrays and plain containers; nothing of it was run."""
