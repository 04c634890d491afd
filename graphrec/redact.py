"""Secrets never reach a message, a log, metrics.json or a checkpoint.

Passwords come from the environment or a mounted file (never YAML). What can still carry
one is a URI with userinfo (``bolt://user:secret@host``) typed on the command line: every
URI is shown through :func:`redact_uri`, and :func:`redact_text` masks any such userinfo
inside free text (a driver's exception message).
"""

from __future__ import annotations

import re

# scheme://userinfo@  (userinfo: everything up to the LAST @ of the URI, so a password
# holding '/' or '@' is masked whole; a rare '@' in a query masks more, never less)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)[^\s'\"]*@")
# a query parameter whose name says secret: ?password=..., &auth_token=..., ;apiKey=...
_SECRET_PARAM = re.compile(
    r"([?&;][^=&#\s?;]*(?:pass|pwd|secret|token|credential|key|auth)[^=&#\s?;]*=)"
    r"[^&#;\s'\"]+",
    re.IGNORECASE,
)


def _mask(text: str) -> str:
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1***@", text))


def redact_uri(uri: str) -> str:
    """``bolt://neo4j:secret@host:7687`` -> ``bolt://***@host:7687``, and the value of a
    query parameter named like a secret (``?password=``, ``&token=``) -> ``***``; other
    URIs unchanged."""
    return _mask(str(uri))


def redact_text(text: str) -> str:
    """Mask the userinfo and secret query parameters of every URI in ``text``."""
    return _mask(str(text))


def has_userinfo(uri: str) -> bool:
    return bool(_USERINFO.match(str(uri)))
