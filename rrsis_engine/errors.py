"""Errors with actionable messages.

Every error the engine raises on bad input derives from :class:`RRSISError` and says what went wrong
and what to do about it, so front ends can show ``str(err)`` to the user verbatim.
"""

from __future__ import annotations


class RRSISError(Exception):
    """Base class for all user-facing rrsis errors."""


class ImageError(RRSISError):
    """The image cannot be read, is empty, or is unusable (too large, wrong band count...)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit."""


class PromptError(RRSISError):
    """A prompt (text, point, box or mask) is invalid."""


class NoImageError(PromptError):
    """A prompt was given before any image was set."""


class CheckpointError(RRSISError):
    """A checkpoint is missing, unreadable, or does not match the model architecture."""


class NoTrainedWeightsError(CheckpointError):
    """No trained weights are installed for the requested model."""


class DataError(RRSISError):
    """A data set is missing files or has malformed records."""


class StoreError(RRSISError):
    """The session store cannot be opened or written."""
