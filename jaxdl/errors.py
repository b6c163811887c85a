"""The exception types jaxdl raises for bad input, non-finite training and unreadable data."""


class InputError(ValueError):
    """A config value, argument, file or dataset that jaxdl cannot use.

    Raised before any heavy work (loading, compiling, training) starts. The
    message names the argument, the value given and what was expected. The
    command line prints it without a traceback and exits with status 2.
    """


class NonFiniteError(RuntimeError):
    """Training produced nan or inf (in the loss or the parameters); the run stopped without saving them."""


class DataError(RuntimeError):
    """A dataset's files that cannot be read (damaged or cut off); the message names them and how to rebuild them."""
