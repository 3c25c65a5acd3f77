"""check(): the tests' assertion, which PYTHONOPTIMIZE cannot remove (an
`assert` statement vanishes under python3 -O)."""


class CheckFailed(AssertionError):
    pass


def check(cond, *what):
    """Raises CheckFailed, with `what` as its message, unless cond holds."""
    if not cond:
        raise CheckFailed(*what)
