"""Exceptions the CLI turns into one-line messages instead of tracebacks."""


class EdgesharpError(Exception):
    """A problem the user can fix (bad file, wrong model folder, missing device); the message says what."""


class MissingExtra(EdgesharpError):
    """An optional dependency is not installed; the message names the `pip install` that fixes it."""


class ImageReadError(EdgesharpError, ValueError):
    """An image file could not be read (missing, unreadable, truncated, unsupported)."""


class BundleError(EdgesharpError):
    """A model bundle folder is missing files, has a bad manifest, or fails its hash check."""
