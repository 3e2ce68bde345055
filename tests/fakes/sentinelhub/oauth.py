"""The OAuth2 client-credentials token endpoint and bearer-token checks."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler as RequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.sentinelhub.common import ServiceError


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OAuthMixin:
    """Token issue and checks of :class:`~tests.fakes.sentinelhub.server.FakeSentinelHub` (uses its
    credentials, ``_tokens``, ``_lock`` and ``_send_json``)."""

    client_id: str
    client_secret: str
    token_lifetime_s: int
    _lock: threading.Lock
    _tokens: dict[str, float]

    def _token(self, h: RequestHandler, raw: bytes) -> int:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = h.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if form.get("grant_type") != "client_credentials":
            return self._send_json(h, 400, {"error": "unsupported_grant_type",
                                            "error_description": "Unsupported grant_type"})
        if not (cid and secrets.compare_digest(cid, self.client_id) and secret
                and secrets.compare_digest(secret, self.client_secret)):
            return self._send_json(h, 401, {"error": "invalid_client",
                                            "error_description": "Invalid client or Invalid client credentials"})
        now = time.time()
        exp = int(now + self.token_lifetime_s)
        token = self._jwt({"exp": exp, "iat": int(now), "jti": str(uuid.uuid4()), "iss": self.base_url
                           + "/auth/realms/CDSE", "typ": "Bearer", "azp": cid, "scope": "email profile",
                           "clientId": cid})
        with self._lock:
            self._tokens[token] = exp
        return self._send_json(h, 200, {"access_token": token, "expires_in": self.token_lifetime_s,
                                        "refresh_expires_in": 0, "token_type": "Bearer", "not-before-policy": 0,
                                        "scope": "email profile"})

    @staticmethod
    def _jwt(claims: dict[str, Any]) -> str:
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "fake"}).encode())
        # pad the claims so that sentinelhub's SentinelHubSession.info() (standard base64 with its
        # own padding rule) decodes them too: no '-'/'_' and a length that is 0 or 2 mod 4
        for i in range(200):
            body = _b64url(json.dumps({**claims, "pad": "x" * i}).encode())
            if "-" not in body and "_" not in body and len(body) % 4 in (0, 2):
                break
        return f"{header}.{body}.{_b64url(secrets.token_bytes(32))}"

    def _check_token(self, h: RequestHandler) -> None:
        auth = h.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            exp = self._tokens.get(token)
        if exp is None or exp < time.time():
            raise ServiceError(401, "You are not authorized! Please provide a valid access token within the header "
                                  "'Authorization: Bearer <accessToken>'.", "COMMON_UNAUTHORIZED")
