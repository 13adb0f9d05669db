"""The credentials of a download, and keeping them out of every message.

- CDSE: a user name and password, from ``CDSE_USERNAME`` / ``CDSE_PASSWORD``, else from the netrc entry of
  ``machine identity.dataspace.copernicus.eu`` (``login`` and ``password``);
- GEODES: an API key, from ``GEODES_API_KEY``, else from the netrc entry of ``machine geodes-portal.cnes.fr``
  (its ``password``; the ``login`` is not used).

The netrc file is ``$NETRC`` when set, else ``~/.netrc``, as curl reads it; the stdlib :mod:`netrc` parses it.
The environment is passed in as a mapping (only the CLI reads ``os.environ``).

Secret values are held in :class:`Secret`, whose ``str`` and ``repr`` are ``***``; only the token request and the
request headers call :meth:`Secret.reveal`. :meth:`Credentials.redact` replaces any secret value that could
still come back in a service's answer (an error page echoing a form) before it reaches a message.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from plotsm.acquire.endpoints import GEODES_HOST
from plotsm.errors import ConfigurationError

#: The netrc machine of CDSE's login (its identity server) [C: data-access notes].
CDSE_NETRC_MACHINE = "identity.dataspace.copernicus.eu"
GEODES_NETRC_MACHINE = GEODES_HOST
ENV_CDSE_USERNAME, ENV_CDSE_PASSWORD, ENV_GEODES_KEY = "CDSE_USERNAME", "CDSE_PASSWORD", "GEODES_API_KEY"
REDACTED = "***"


class Secret:
    """A secret string that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class CdseLogin:
    """CDSE's user name and password, and where they were read (``source``: words for messages)."""

    username: Secret
    password: Secret
    source: str


@dataclass(frozen=True)
class GeodesKey:
    """GEODES' API key and where it was read."""

    key: Secret
    source: str


@dataclass(frozen=True)
class Credentials:
    """What :func:`read_credentials` found; either may be missing (:meth:`require_cdse`, :meth:`require_geodes`)."""

    cdse: CdseLogin | None = None
    geodes: GeodesKey | None = None
    netrc_path: Path | None = None

    def secrets(self) -> list[str]:
        """Every secret value (user names too: they identify an account)."""
        found = []
        if self.cdse:
            found += [self.cdse.username.reveal(), self.cdse.password.reveal()]
        if self.geodes:
            found.append(self.geodes.key.reveal())
        return [s for s in found if s]

    def redact(self, text: str) -> str:
        """``text`` with every secret value replaced by ``***`` (longest first)."""
        for value in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text

    def require_cdse(self) -> CdseLogin:
        if self.cdse is None:
            raise ConfigurationError(
                f"no CDSE account found: set {ENV_CDSE_USERNAME} and {ENV_CDSE_PASSWORD}, or add "
                f"`machine {CDSE_NETRC_MACHINE} login <user> password <password>` to {self._netrc_words()}. "
                "An account is free at https://dataspace.copernicus.eu.")
        return self.cdse

    def require_geodes(self) -> GeodesKey:
        if self.geodes is None:
            raise ConfigurationError(
                f"no GEODES API key found: set {ENV_GEODES_KEY}, or add `machine {GEODES_NETRC_MACHINE} login "
                f"<user> password <API key>` to {self._netrc_words()}. Create a key in your GEODES account "
                f"(https://{GEODES_HOST}).")
        return self.geodes

    def _netrc_words(self) -> str:
        return f"{self.netrc_path} ($NETRC or ~/.netrc)" if self.netrc_path else "~/.netrc (or the file $NETRC names)"


def netrc_path(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """The netrc file curl would read: ``$NETRC``, else ``~/.netrc``."""
    named = environ.get("NETRC")
    if named:
        return Path(named).expanduser()
    return (home if home is not None else Path.home()) / ".netrc"


def read_credentials(environ: Mapping[str, str], netrc_file: str | os.PathLike[str] | None = None) -> Credentials:
    """CDSE's login and GEODES' key from ``environ``, else from ``netrc_file`` (skipped when it does not exist).
    :class:`ConfigurationError` (exit 3) for half a login in the environment or a netrc file that cannot be read;
    the message names the file and the line, never its content."""
    path = Path(netrc_file) if netrc_file is not None else None
    user, password = environ.get(ENV_CDSE_USERNAME, ""), environ.get(ENV_CDSE_PASSWORD, "")
    if bool(user) != bool(password):
        have, missing = (ENV_CDSE_USERNAME, ENV_CDSE_PASSWORD) if user else (ENV_CDSE_PASSWORD, ENV_CDSE_USERNAME)
        raise ConfigurationError(f"{have} is set but {missing} is not. Set both, or neither to use {path or '~/.netrc'}.")
    cdse = CdseLogin(Secret(user), Secret(password), "the environment") if user else None
    key = environ.get(ENV_GEODES_KEY, "")
    geodes = GeodesKey(Secret(key), "the environment") if key else None
    if (cdse is None or geodes is None) and path is not None and path.is_file():
        entries = _read_netrc(path)
        if cdse is None and (entry := entries.authenticators(CDSE_NETRC_MACHINE)) and entry[0] and entry[2]:
            cdse = CdseLogin(Secret(entry[0]), Secret(entry[2]), str(path))
        if geodes is None and (entry := entries.authenticators(GEODES_NETRC_MACHINE)) and entry[2]:
            geodes = GeodesKey(Secret(entry[2]), str(path))
    return Credentials(cdse=cdse, geodes=geodes, netrc_path=path)


def _read_netrc(path: Path) -> netrc.netrc:
    try:
        return netrc.netrc(str(path))
    except netrc.NetrcParseError as exc:  # its message may quote a token of the file: not repeated here
        raise ConfigurationError(f"{path}: not a valid netrc file (line {exc.lineno}). Fix that line, or set the "
                                 "credentials in the environment instead.") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigurationError(f"{path}: cannot read the netrc file ({reason}).") from None


__all__ = ["CDSE_NETRC_MACHINE", "ENV_CDSE_PASSWORD", "ENV_CDSE_USERNAME", "ENV_GEODES_KEY", "GEODES_NETRC_MACHINE",
           "REDACTED", "CdseLogin", "Credentials", "GeodesKey", "Secret", "netrc_path", "read_credentials"]
