"""Keep portal-link tokens out of logs.

A portal link (`/portal/enter/<token>/`) is a credential until it is used, and its token is in
the URL path, which Django's request log ("Forbidden (403): /portal/enter/...") and every access
log print. Two places mask it, as `/portal/enter/[masked]/`:

* :class:`MaskPortalTokens`, a logging filter that settings put on the `django.request` and
  `django.server` (runserver's access log) loggers;
* :class:`GunicornLogger`, gunicorn's logger with the same masking on every access-log field
  (`billing_site/gunicorn.conf.py` sets it as `logger_class`).

A proxy in front (nginx) logs the path too: see the README's "Running in production".
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger as _GunicornBaseLogger

# The token runs to the next "/", "?", "#", whitespace or quote; percent-encoded or not.
_PORTAL_TOKEN = re.compile(r"(/portal/enter/)[^/?#\s\"']+")
MASK = "[masked]"


def mask_portal_tokens(text: str) -> str:
    return _PORTAL_TOKEN.sub(rf"\g<1>{MASK}", text)


class MaskPortalTokens(logging.Filter):
    """Rewrites a record's message with portal tokens masked (it never drops a record).

    Put it on a logger, not a handler: a logger's filters run once, before the record reaches
    any handler (its own or its parents'), so every output sees the masked message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_portal_tokens(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class GunicornLogger(_GunicornBaseLogger):
    """gunicorn's logger, with portal tokens masked in every access-log field (%(r)s, %(U)s,
    %(f)s, headers and environ)."""

    def atoms(self, resp, req, environ, request_time) -> dict[str, Any]:
        return {
            key: mask_portal_tokens(value) if isinstance(value, str) else value
            for key, value in super().atoms(resp, req, environ, request_time).items()
        }
