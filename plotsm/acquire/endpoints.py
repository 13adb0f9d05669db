"""Where ``plotsm download`` fetches from and to whom it may show credentials.

Three settings, each a URL: CDSE's OData service (``odata_url``: whole products ``Products(<Id>)/$value``,
single files ``…/Nodes(…)/$value``, product JSON ``Products(<Id>)``), CDSE's token endpoint (``token_url``) and
GEODES' STAC root (``geodes_url``, the same setting as for ``plotsm search``; its downloads are under the API
root, the STAC root without its ``/stac``). Mirrors and tests point them elsewhere.

Hrefs of a plan name the production hosts; :meth:`Endpoints.rewrite` moves those onto the configured URLs, so
a plan found on CDSE downloads from a mirror, and a test server can serve it.

Credentials go only to an allow-list of *origins* (scheme, host, port; another port is another origin):
CDSE's bearer token to CDSE's download and catalogue hosts and the configured CDSE URLs; GEODES' API key to
GEODES' portal and the configured GEODES URL. :mod:`plotsm.acquire.client` follows redirects by hand and drops
the credentials when a redirect leaves the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from plotsm.acquire.geodes import GEODES_STAC_URL
from plotsm.acquire.service import check_url

#: CDSE's OData download service [C: data-access notes; CDSETool ``download.py``]: ``$value`` of products and
#: of their nodes.
CDSE_ODATA_URL = "https://download.dataspace.copernicus.eu/odata/v1"
#: CDSE's OData catalogue: product JSON (``Id``, ``Name``, ``ContentLength``, ``Checksum``, ``Online``); its
#: ``$value`` redirects to the download host [C: data-access notes].
CDSE_CATALOGUE_URL = "https://catalogue.dataspace.copernicus.eu/odata/v1"
#: CDSE's OpenID Connect token endpoint (password and refresh grants, client ``cdse-public``) [C: CDSE docs].
CDSE_TOKEN_URL = "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"
#: CDSE hosts that serve OData (``zipper`` is the older name of the download host) [C: data-access notes].
CDSE_ODATA_HOSTS = ("download.dataspace.copernicus.eu", "zipper.dataspace.copernicus.eu",
                    "catalogue.dataspace.copernicus.eu")
#: GEODES' portal: STAC under ``/api/stac``, downloads under ``/api/download`` [C: data-access notes; pyGeodes].
GEODES_HOST = "geodes-portal.cnes.fr"
#: CDSE's quota: 4 concurrent connections per account [C: CDSE docs, Quotas].
CDSE_MAX_TRANSFERS = 4

#: (scheme, host, port) of a URL: credentials are sent per origin, never per host name alone.
Origin = tuple[str, str, int]


def origin(url: str) -> Origin:
    """The origin of ``url``, with the scheme's default port made explicit."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


@dataclass(frozen=True)
class Endpoints:
    """The services of a download (see the module docstring). Use :meth:`configure` to build one from settings
    that may be missing."""

    odata_url: str = CDSE_ODATA_URL
    catalogue_url: str = CDSE_CATALOGUE_URL
    token_url: str = CDSE_TOKEN_URL
    geodes_url: str = GEODES_STAC_URL

    @classmethod
    def configure(cls, odata_url: str | None = None, token_url: str | None = None,
                  geodes_url: str | None = None) -> Endpoints:
        """Endpoints from settings, each checked (:class:`~plotsm.errors.UsageError` for one that is not an
        http(s) URL). A configured ``odata_url`` serves both the files and the product JSON; by default files
        come from CDSE's download host and product JSON from its catalogue."""
        odata = check_url(odata_url, "odata_url", CDSE_ODATA_URL) if odata_url else None
        return cls(odata_url=odata or CDSE_ODATA_URL, catalogue_url=odata or CDSE_CATALOGUE_URL,
                   token_url=check_url(token_url, "token_url", CDSE_TOKEN_URL) if token_url else CDSE_TOKEN_URL,
                   geodes_url=check_url(geodes_url, "geodes_url", GEODES_STAC_URL) if geodes_url else GEODES_STAC_URL)

    @property
    def geodes_api(self) -> str:
        """GEODES' API root: the STAC root without a trailing ``/stac``."""
        return self.geodes_url[: -len("/stac")] if self.geodes_url.endswith("/stac") else self.geodes_url

    def cdse_origins(self) -> frozenset[Origin]:
        """Where CDSE's bearer token may go."""
        urls = [f"https://{host}/" for host in CDSE_ODATA_HOSTS] + [self.odata_url, self.catalogue_url, self.token_url]
        return frozenset(origin(u) for u in urls)

    def geodes_origins(self) -> frozenset[Origin]:
        """Where GEODES' API key may go."""
        return frozenset({origin(f"https://{GEODES_HOST}/"), origin(self.geodes_url)})

    def rewrite(self, href: str) -> str:
        """``href`` moved onto the configured URLs when it names a production host (CDSE OData, GEODES API);
        other hrefs unchanged."""
        for host in CDSE_ODATA_HOSTS:
            prefix = f"https://{host}/odata/v1"
            if href == prefix or href.startswith(prefix + "/"):
                return self.odata_url + href[len(prefix):]
        prefix = f"https://{GEODES_HOST}/api"
        if href == prefix or href.startswith(prefix + "/"):
            return self.geodes_api + href[len(prefix):]
        return href

    def product_url(self, product_id: str) -> str:
        """The OData JSON of product ``product_id`` (``Products(<Id>)``), on the catalogue."""
        return f"{self.catalogue_url}/Products({product_id})"


__all__ = ["CDSE_CATALOGUE_URL", "CDSE_MAX_TRANSFERS", "CDSE_ODATA_HOSTS", "CDSE_ODATA_URL", "CDSE_TOKEN_URL",
           "GEODES_HOST", "Endpoints", "Origin", "origin"]
