"""Who the current call acts for, as the authoriser found it: read by the servicers that hold a caller
limited to licences to those licences' shortcodes (one context per call: gRPC runs each call in its own
task)."""

from __future__ import annotations

from contextvars import ContextVar

_limited_to: ContextVar[tuple[str, ...]] = ContextVar("limited_to", default=())


def limited_to() -> tuple[str, ...]:
    """The licences the current call's token is limited to; () when it is not limited, or when
    authentication is off."""
    return _limited_to.get()


def set_limited_to(licences: tuple[str, ...]) -> None:
    """Called by the authoriser once it has accepted the call's token."""
    _limited_to.set(licences)
