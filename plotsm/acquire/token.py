"""CDSE's access token: one password login, refresh grants while the refresh token lives, a new login only after.

The token endpoint (:data:`~plotsm.acquire.endpoints.CDSE_TOKEN_URL`, a setting) takes a form
``client_id=cdse-public&grant_type=password&username=…&password=…`` and answers ``{access_token,
refresh_token, expires_in, refresh_expires_in}`` (CDSE: 600 s and 3600 s); a refresh is
``grant_type=refresh_token&refresh_token=…&client_id=cdse-public`` [C: CDSE docs, APIs/Token]. Every login opens
a session on CDSE's side, and an account has at most 100 [C: CDSE docs, Quotas], so :class:`TokenSource` logs in
once, refreshes a little before the access token expires (:func:`renewal_margin`), and logs in again only when
the refresh token has expired or was refused. A 401 on a download calls :meth:`TokenSource.renew` with the
token the server refused: the first thread to report it renews, the others get the new token.

Thread-safe: one lock around every grant, so four transfers starting together make one login.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from plotsm.acquire.client import DownloadError, new_session
from plotsm.acquire.credentials import CdseLogin, Credentials, Secret
from plotsm.acquire.endpoints import Origin
from plotsm.acquire.service import short
from plotsm.errors import ConfigurationError, option

#: CDSE's public OpenID client [C: CDSE docs, APIs/Token].
CDSE_CLIENT_ID = "cdse-public"
#: Renew this long before a token expires, at most [D: 30 s covers a slow token request and clock drift; a tenth
#: of the lifetime for short-lived tokens].
RENEWAL_MARGIN_S = 30.0


def renewal_margin(lifetime_s: float) -> float:
    """Seconds before expiry at which a token of ``lifetime_s`` is renewed."""
    return min(RENEWAL_MARGIN_S, 0.1 * lifetime_s)


class AuthError(ConfigurationError):
    """CDSE refused the login (exit code 3): the message says where the credentials were read, never them."""


@dataclass
class _Token:
    access: str
    refresh: str | None
    access_until: float
    refresh_until: float


class TokenSource:
    """CDSE access tokens for ``login`` from ``url`` (see the module docstring). ``clock`` (monotonic seconds)
    is a setting for tests. ``grants`` counts the grants made: ``{"password": n, "refresh_token": m}``."""

    def __init__(self, url: str, login: CdseLogin, credentials: Credentials, *, timeout_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, session: requests.Session | None = None) -> None:
        self.url, self._login, self._credentials, self._timeout_s = url, login, credentials, timeout_s
        self._clock = clock
        self._session = session or new_session()
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self.grants = {"password": 0, "refresh_token": 0}

    def bearer(self) -> str:
        """A valid access token: the current one, refreshed, or from a new login."""
        with self._lock:
            return self._valid()

    def renew(self, rejected: str) -> str:
        """A new access token after a server refused ``rejected`` (unless another thread already renewed it)."""
        with self._lock:
            if self._token is not None and self._token.access == rejected:
                self._token.access_until = float("-inf")
            return self._valid()

    def _valid(self) -> str:
        now = self._clock()
        token = self._token
        if token is not None and now < token.access_until:
            return token.access
        if token is not None and token.refresh and now < token.refresh_until:
            renewed = self._grant({"grant_type": "refresh_token", "refresh_token": token.refresh}, refresh=True)
            if renewed is not None:
                return renewed.access
        login = self._login
        token = self._grant({"grant_type": "password", "username": login.username.reveal(),
                             "password": login.password.reveal()}, refresh=False)
        assert token is not None  # a refused password grant raises
        return token.access

    def _grant(self, form: dict[str, str], *, refresh: bool) -> _Token | None:
        """Ask for a token; None when a refresh is refused (the caller logs in), :class:`AuthError` when a login
        is, :class:`DownloadError` when the endpoint cannot be reached or answers nonsense."""
        kind = form["grant_type"]
        self.grants[kind] += 1
        fix = f"Check {option('token_url')} ({self.url})."
        started = self._clock()
        try:
            response = self._session.post(self.url, data={"client_id": CDSE_CLIENT_ID, **form},
                                          timeout=self._timeout_s, allow_redirects=False)
        except requests.RequestException as exc:
            raise DownloadError(f"{self.url}: cannot get a CDSE token ({type(exc).__name__}). {fix}") from None
        body = self._credentials.redact(short(response.text, 200))
        if response.status_code in (400, 401) and refresh:
            return None
        if response.status_code in (400, 401):
            raise AuthError(f"{self.url}: CDSE refused the login with the account from {self._login.source} "
                            f"(HTTP {response.status_code}: {body}). Check the user name and password; accounts "
                            "with two-factor authentication need a TOTP code, which plotsm does not send.")
        if response.status_code != 200:
            raise DownloadError(f"{self.url}: HTTP {response.status_code} for a token ({body}). {fix}")
        self._token = _parse(response, started, self.url, fix)
        return self._token


def _parse(response: requests.Response, started: float, url: str, fix: str) -> _Token:
    try:
        answer: Any = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, Mapping) or not isinstance(answer.get("access_token"), str):
        raise DownloadError(f"{url}: the token answer has no access_token. {fix}")
    life = _seconds(answer.get("expires_in"), 600.0)
    refresh = answer.get("refresh_token") if isinstance(answer.get("refresh_token"), str) else None
    refresh_life = _seconds(answer.get("refresh_expires_in"), 0.0 if refresh is None else 3600.0)
    return _Token(access=answer["access_token"], refresh=refresh,
                  access_until=started + life - renewal_margin(life),
                  refresh_until=started + refresh_life - renewal_margin(refresh_life))


def _seconds(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default


class BearerAuth:
    """``Authorization: Bearer <token>`` for the origins of CDSE's allow-list (:mod:`plotsm.acquire.client`)."""

    name = "CDSE token"

    def __init__(self, tokens: TokenSource, origins: frozenset[Origin]) -> None:
        self.tokens, self.origins = tokens, origins

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.bearer()}"}

    def renew(self, sent: Mapping[str, str]) -> bool:
        rejected = sent.get("Authorization", "").removeprefix("Bearer ")
        self.tokens.renew(rejected)
        return True


class ApiKeyAuth:
    """``X-API-Key: <key>`` for GEODES' origins; a refused key cannot be renewed."""

    name = "GEODES API key"

    def __init__(self, key: Secret, origins: frozenset[Origin]) -> None:
        self._key, self.origins = key, origins

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self._key.reveal()}

    def renew(self, sent: Mapping[str, str]) -> bool:
        return False


__all__ = ["CDSE_CLIENT_ID", "RENEWAL_MARGIN_S", "ApiKeyAuth", "AuthError", "BearerAuth", "TokenSource",
           "renewal_margin"]
