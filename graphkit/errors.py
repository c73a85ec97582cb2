"""The one exception type graphkit raises for bad input."""


class GraphError(ValueError):
    """Raised for every input problem graphkit detects.

    A subclass of :class:`ValueError`, so ``except ValueError`` keeps working. The message names
    the offending field and, where there is one, the first bad entry.
    """
