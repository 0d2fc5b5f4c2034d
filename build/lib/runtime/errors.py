"""The one exception type that means "the user gave us something we cannot use"."""


class InputError(Exception):
    """Bad usage or bad input: the CLI prints `error: <message>` and exits with code 2."""
