"""The one exception type for errors a user can cause and fix."""


class BandsearchError(Exception):
    """Bad input or an unreachable service; the message names the file, key or address
    and says what to do. The CLI prints it without a traceback and exits non-zero."""
