"""Webhook token verification: the `clockify-signature` header is the webhook's secret itself
(no HMAC over the body, see clockify-facts.md section 1), so it is compared in constant time
with every configured token, and checked before the body is read or parsed.
"""

from __future__ import annotations

import hmac

from app.config import WebhookToken


class TokenVerifier:
    def __init__(self, tokens: tuple[WebhookToken, ...]) -> None:
        self._tokens = [(t.secret.reveal().encode(), t) for t in tokens]

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def match(self, header: str | bytes | None) -> WebhookToken | None:
        """The configured token equal to `header`, or None. Every token is compared, so the
        time taken does not tell which (or whether a prefix) matched."""
        if not header:
            return None
        if isinstance(header, str):
            header = header.encode("utf-8", "replace")
        candidate = header.strip()
        found: WebhookToken | None = None
        for secret, token in self._tokens:
            if hmac.compare_digest(secret, candidate):
                found = token
        return found
