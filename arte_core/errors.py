"""The one exception users see: it names what is wrong and what to do about it."""


class ArteError(Exception):
    """A problem the user can fix (bad input, unknown name, missing file).

    The CLI prints the message alone, without a traceback, and exits with status 2.
    """
