"""User-facing errors.

Anything a user can cause (bad file, bad option, unknown name) raises :class:`DeblurkitError`
with a one-line message; the CLI prints it as ``deblurkit: error: <message>`` and exits with
status 2, without a traceback.
"""

from __future__ import annotations


class DeblurkitError(Exception):
    """An error caused by user input, reported as one line without a traceback."""


class UnknownNameError(DeblurkitError, KeyError):
    """A name (preset, model, metric, ...) that is not in its registry."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(sorted(self.valid))}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])
