"""The one exception type for bad input from users."""


class InputError(ValueError):
    """A config value, argument, file or dataset that jaxdl cannot use.

    Raised before any heavy work (loading, compiling, training) starts. The
    message names the argument, the value given and what was expected. The
    command line prints it without a traceback and exits with status 2.
    """


class NonFiniteError(RuntimeError):
    """Training produced nan or inf (in the loss or the parameters); the run stopped without saving them."""
