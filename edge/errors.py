"""Exceptions the CLI turns into one-line messages instead of tracebacks."""


class EdgesharpError(Exception):
    """A problem the user can fix (bad file, wrong model folder, missing device); the message says what."""


class MissingExtra(EdgesharpError):
    """An optional dependency is not installed; the message names the `pip install` that fixes it."""


class ImageReadError(EdgesharpError, ValueError):
    """An image file could not be read (missing, unreadable, truncated, unsupported)."""


class BundleError(EdgesharpError):
    """A model bundle folder is missing files, has a bad manifest, or fails its hash check."""


class UsageError(EdgesharpError):
    """A request refused before anything is written: an output that is an input of the same run, a frame rate,
    size or count that is not a finite positive number. The CLI exits with status 2, like argparse."""


class OutputError(EdgesharpError, OSError):
    """An output file could not be written completely; the previous file of that name, if any, is unchanged."""
