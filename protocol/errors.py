"""The protocol layer's one error family: every error says what was wrong and what to do."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by protocol/."""


class InvalidSpec(ProtocolError):
    """A query spec, key profile or set expression is malformed."""


class MalformedMessage(ProtocolError):
    """A message failed validation: wrong length, a point not on the curve, a tampered byte."""


class KeyMismatch(ProtocolError):
    """Values under different keys were combined (for example two Paillier public keys)."""


class ProtocolStateError(ProtocolError):
    """A step was called out of order or with inputs from another query."""
