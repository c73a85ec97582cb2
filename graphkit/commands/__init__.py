"""CLI sub-commands, one module each (see :mod:`graphkit.cli`)."""
