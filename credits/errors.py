"""Error codes of the credit rules."""

from __future__ import annotations


class ErrorCode:
    GRANT_VOIDED = "grant_voided"
