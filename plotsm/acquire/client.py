"""HTTP for downloads: one GET that follows redirects by hand, sends credentials only to their allow-list, waits
when a service is busy and renews a refused token once.

- **Redirects** (301, 302, 303, 307, 308) are followed by hand, at most :data:`MAX_REDIRECTS`. Credentials (the
  headers of an :class:`Auth`) go only to the origins of its allow-list (:mod:`plotsm.acquire.endpoints`); a
  redirect elsewhere — another host, port or scheme — is followed *without* them (a pre-signed storage URL
  needs none), and :attr:`Client.notify` says so once per origin. requests' own netrc lookup is switched off,
  so no other credentials are ever added.
- **Busy services**: 429, 500, 502, 503 and 504 are asked again after the ``Retry-After`` the answer gives
  (seconds or an HTTP date), else after ``retry_wait_s``, doubled each time (at most :data:`MAX_BACKOFF_S`), at
  most ``retries`` times; a ``Retry-After`` longer than ``max_wait_s`` ends the request at once. A refused
  connection, a timeout or a reset is retried the same way and then raises :class:`UnreachableError`.
- **401** from an origin that was sent credentials: :meth:`Auth.renew` (a token refresh or a new login) and one
  more try.

Every error is a :class:`DownloadError` (exit code 4) naming the URL (without its query, which may hold a
signature) and the cause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
import requests.adapters
import requests.auth

from plotsm.acquire.endpoints import Origin, origin
from plotsm.acquire.service import short, user_agent
from plotsm.errors import InputError

#: Redirects followed at most for one request [D: CDSE uses one, catalogue → download host].
MAX_REDIRECTS = 5
#: Longest back-off between two tries when the service gives no Retry-After [D].
MAX_BACKOFF_S = 60.0
#: Answers that mean "busy or broken for now, ask again" [C: RFC 9110 §15.6; CDSE's 429 "Max session number
#: exceeded", data-access notes].
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Notify = Callable[[str], None]


class DownloadError(InputError):
    """A file could not be downloaded or a service answered what plotsm cannot use (exit code 4)."""


class UnreachableError(DownloadError):
    """The service could not be reached (refused, reset, timed out) after the retries."""


class Cancelled(Exception):
    """The download was stopped (Ctrl-C): raised in the transfer threads, not an error of theirs."""


class Auth(Protocol):
    """Credentials for some origins: their headers, and whether a refused one could be renewed."""

    name: str
    origins: frozenset[Origin]

    def headers(self) -> dict[str, str]: ...

    def renew(self, sent: Mapping[str, str]) -> bool: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to try (see the module docstring); ``timeout_s`` per connect and per read."""

    retries: int = 5
    retry_wait_s: float = 2.0
    max_wait_s: float = 300.0
    timeout_s: float = 60.0

    def backoff(self, attempt: int) -> float:
        return float(min(MAX_BACKOFF_S, self.retry_wait_s * 2 ** max(0, attempt - 1)))


class _NoNetrc(requests.auth.AuthBase):
    """An auth that adds nothing: with it set, requests does not look up ~/.netrc for every host."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        return r


def new_session(pool: int = 4) -> requests.Session:
    """A requests session without netrc lookup, with plotsm's User-Agent and no retries of its own."""
    session = requests.Session()
    session.auth = _NoNetrc()
    session.headers["User-Agent"] = user_agent()
    adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def shown(url: str) -> str:
    """``url`` without its query and fragment (a pre-signed URL's signature stays out of messages)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: a number of seconds or an HTTP date; None if absent or
    unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass
class Opened:
    """An answer being streamed (200, 206 or 416), from ``url`` after redirects."""

    response: requests.Response
    url: str


class Client:
    """GETs with the rules of the module docstring; one requests session per thread. ``notify`` receives
    informational lines (already redacted by ``redact``); ``stop`` interrupts waits."""

    def __init__(self, policy: RetryPolicy, *, notify: Notify | None = None, stop: threading.Event | None = None,
                 redact: Callable[[str], str] = lambda text: text) -> None:
        self.policy, self._notify, self.redact = policy, notify, redact
        self.stop = stop or threading.Event()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._told: set[Origin] = set()

    def notify(self, message: str) -> None:
        if self._notify is not None:
            self._notify(self.redact(message))

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = new_session()
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or raise :class:`Cancelled` as soon as the download is stopped."""
        if self.stop.wait(max(0.0, seconds)):
            raise Cancelled()

    def get_json(self, url: str, auth: Auth | None = None) -> Any:
        """The JSON answer of ``GET url``."""
        opened = self.open(url, auth=auth)
        with opened.response as response:
            try:
                return response.json()
            except (ValueError, requests.RequestException):
                raise DownloadError(f"{shown(opened.url)}: the answer is not JSON.") from None

    def open(self, url: str, *, auth: Auth | None = None, headers: Mapping[str, str] | None = None) -> Opened:
        """Stream ``GET url``: an :class:`Opened` 200, 206 or 416 answer, or :class:`DownloadError`."""
        attempt, renewed = 0, False
        while True:
            if self.stop.is_set():
                raise Cancelled()
            try:
                response, final, sent = self._follow(url, auth, dict(headers or {}))
            except (requests.ConnectionError, requests.Timeout) as exc:
                attempt += 1
                reason = describe_failure(exc)
                if attempt > self.policy.retries:
                    tries = f"{attempt} {'try' if attempt == 1 else 'tries'}"
                    raise UnreachableError(self.redact(f"{shown(url)}: {reason}; gave up after {tries}. "
                                                       "Check the network and the URL, then run again.")) from None
                wait = self.policy.backoff(attempt)
                self.notify(f"{shown(url)}: {reason}; trying again in {wait:g} s")
                self.wait(wait)
                continue
            status = response.status_code
            if status == 401 and sent and auth is not None and not renewed:
                response.close()
                renewed = True
                if auth.renew(sent):
                    self.notify(f"{shown(final)}: HTTP 401, the {auth.name} was renewed; trying again")
                    continue
                raise DownloadError(f"{shown(final)}: HTTP 401: the {auth.name} was refused. Check it.")
            if status in RETRY_STATUSES:
                attempt += 1
                detail = self._excerpt(response)
                given = retry_after_seconds(response.headers.get("Retry-After"))
                wait = given if given is not None else self.policy.backoff(attempt)
                what = f"{shown(final)}: HTTP {status}" + (f" ({detail})" if detail else "")
                if attempt > self.policy.retries:
                    raise DownloadError(f"{what}, {attempt} times. Try again later.")
                if wait > self.policy.max_wait_s:
                    raise DownloadError(f"{what}: asks to wait {wait:.0f} s, more than {self.policy.max_wait_s:g} s. "
                                        "Try again later.")
                self.notify(f"{what}; waiting {wait:g} s" + (" (Retry-After)" if given is not None else ""))
                self.wait(wait)
                continue
            if status in (200, 206, 416):
                return Opened(response, final)
            detail = self._excerpt(response)
            what = f"{shown(final)}: HTTP {status}" + (f" ({detail})" if detail else "")
            if status == 401 and not sent:
                raise DownloadError(f"{what}: this host asks for credentials, and plotsm sends them only to the "
                                    "hosts of its allow-list (the configured services).")
            if status == 401:
                raise DownloadError(f"{what}: the {auth.name if auth else 'credentials'} was refused again after "
                                    "a renewal.")
            raise DownloadError(what + ".")

    def _follow(self, url: str, auth: Auth | None, headers: dict[str, str]
                ) -> tuple[requests.Response, str, dict[str, str]]:
        """GET ``url`` following redirects by hand; the answer, its URL and the credentials headers sent to it."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            sent = auth.headers() if auth is not None and origin(current) in auth.origins else {}
            timeout = (self.policy.timeout_s, self.policy.timeout_s)
            response = self.session().get(current, headers={**headers, **sent}, stream=True, allow_redirects=False,
                                          timeout=timeout)
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response, current, sent
            response.close()
            target = urljoin(current, location)
            if auth is not None and sent and origin(target) not in auth.origins:
                self._tell(target, auth)
            current = target
        raise DownloadError(f"{shown(url)}: more than {MAX_REDIRECTS} redirects.")

    def _tell(self, target: str, auth: Auth) -> None:
        where = origin(target)
        with self._lock:
            if where in self._told:
                return
            self._told.add(where)
        self.notify(f"redirected to {where[0]}://{where[1]}:{where[2]}, which is not a service of the allow-list: "
                    f"followed without the {auth.name}")

    def _excerpt(self, response: requests.Response) -> str:
        try:
            raw = next(response.iter_content(300), b"")
        except requests.RequestException:
            raw = b""
        finally:
            response.close()
        return self.redact(short(raw.decode("utf-8", errors="replace"), 200))


def describe_failure(exc: BaseException) -> str:
    """Words for a connection failure: refused, timed out, reset, cut."""
    text = str(exc).lower()
    if isinstance(exc, requests.Timeout) or "timed out" in text:
        return "no answer in time"
    if "refused" in text:
        return "connection refused"
    if "reset" in text or "aborted" in text or "remotedisconnected" in text or "closed" in text:
        return "connection closed by the server"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    return f"connection failed ({type(exc).__name__})"


__all__ = ["MAX_BACKOFF_S", "MAX_REDIRECTS", "RETRY_STATUSES", "Auth", "Cancelled", "Client", "DownloadError",
           "Notify", "Opened", "RetryPolicy", "UnreachableError", "describe_failure", "new_session",
           "retry_after_seconds", "shown"]
