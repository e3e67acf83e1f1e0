"""Exceptions raised by motiflab.

Every error a user can trigger with bad input is a :class:`MotifLabError` whose
message says what is wrong *and* what to do about it, so nobody has to read a
traceback from inside numba to find out that their image had a NaN in it.
"""


class MotifLabError(ValueError):
    """Bad input or an impossible request, with a message that names the fix.

    Subclasses :class:`ValueError` so generic ``except ValueError`` handlers
    (and scikit-learn style validation) keep working.
    """


class InputFileError(MotifLabError, OSError):
    """A file could not be found, read or written."""
