"""User-facing errors: one line that names the problem and the fix.

The CLI prints these without a traceback and exits with code 2; anything else is a bug.
"""


class UnifiedVizError(ValueError):
    """Bad input from the user (model string, unit address, file, config)."""
