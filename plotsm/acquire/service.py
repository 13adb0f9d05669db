"""Talking to a search service: its URL checked, a JSON POST by hand (GEODES), and the one error of a service
that cannot be reached or answers what plotsm cannot use (:class:`SearchServiceError`, exit code 4).

Searching needs no credentials: nothing here sends a token or a key.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse

from plotsm.errors import InputError, UsageError, option

#: Seconds to wait for a service's answer to one request [D: CDSE's STAC answers in about a second; a minute
#: tolerates a slow page without hanging a script for long].
DEFAULT_TIMEOUT_S = 60.0


class SearchServiceError(InputError):
    """A search service could not be reached, or sent an answer plotsm cannot use (exit code 4). The message
    names the URL and what to do."""


def check_url(url: str, name: str, example: str = "https://stac.dataspace.copernicus.eu/v1") -> str:
    """``url`` without a trailing slash, if it is an http(s) URL; :class:`UsageError` naming setting ``name``
    (and an ``example`` of a right one) otherwise."""
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"{option(name, url)}: not an http(s) URL. Pass the service's root, e.g. {example}.")
    return url.strip().rstrip("/")


def user_agent() -> str:
    from plotsm import __version__

    return f"plotsm/{__version__}"


def short(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def post_json(url: str, body: dict[str, Any], *, timeout_s: float = DEFAULT_TIMEOUT_S, fix: str = "") -> Any:
    """The JSON answer of ``POST url`` with JSON ``body``; :class:`SearchServiceError` naming ``url``, the cause
    and ``fix`` for a refused connection, a timeout, an HTTP error or an answer that is not JSON."""
    data = json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json", "User-Agent": user_agent()})
    return _answer(request, url, timeout_s, fix)


def get_json(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, fix: str = "") -> Any:
    """The JSON answer of ``GET url``; errors as :func:`post_json`'s."""
    request = urllib.request.Request(url, method="GET", headers={"Accept": "application/json",
                                                                 "User-Agent": user_agent()})
    return _answer(request, url, timeout_s, fix)


def _answer(request: urllib.request.Request, url: str, timeout_s: float, fix: str) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            raw: bytes = response.read()
    except urllib.error.HTTPError as err:
        detail = short(err.read().decode("utf-8", errors="replace")) or str(err.reason)
        raise SearchServiceError(f"{url}: HTTP {err.code}: {detail}. {fix}".rstrip()) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise SearchServiceError(f"{url}: no answer within {timeout_s:g} s. {fix}".rstrip()) from None
        raise SearchServiceError(f"{url}: cannot connect ({err.reason}). Check the network connection and the "
                                 f"URL. {fix}".rstrip()) from None
    except TimeoutError:
        raise SearchServiceError(f"{url}: no answer within {timeout_s:g} s. {fix}".rstrip()) from None
    except (http.client.HTTPException, OSError) as err:  # e.g. the connection closed in the middle of the answer
        raise SearchServiceError(f"{url}: connection failed ({err!r}). {fix}".rstrip()) from None
    try:
        return json.loads(raw)
    except ValueError:
        excerpt = short(raw.decode("utf-8", errors="replace"), 80)
        raise SearchServiceError(f"{url}: the answer is not JSON ({excerpt!r}). {fix}".rstrip()) from None


__all__ = ["DEFAULT_TIMEOUT_S", "SearchServiceError", "check_url", "get_json", "post_json", "short", "user_agent"]
