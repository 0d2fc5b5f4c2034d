"""The one exception type that means "the user gave us something we cannot use"."""


class InputError(Exception):
    """Bad usage or bad input: the CLI prints `error: <message>` and exits with code 2."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: error lines stay one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
