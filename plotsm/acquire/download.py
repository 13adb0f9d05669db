"""Downloading what a plan lists (``plotsm download``): prepare, then fetch at most N files at a time.

:func:`prepare_download` picks the files (:mod:`.files`), checks the settings (at most
:data:`~plotsm.acquire.endpoints.CDSE_MAX_TRANSFERS` transfers when CDSE serves any), takes the folder's lock,
reads its manifest (files already there and checked are skipped), checks that the credentials the remaining files
need are there, reads the size and checksum of whole S1 products from their OData JSON (an offline product is
skipped), checks the free disk space against the known sizes and logs in to CDSE once. :meth:`Download.run`
then fetches the files on ``transfers`` threads (:mod:`.transfer`), records each in the manifest as it lands,
and returns a :class:`DownloadReport`: a file that fails is reported with its reason and the others go on; once
a service could not be reached at all, its remaining files are not tried. A refused login, a full disk or Ctrl-C
stop everything (``.part`` files stay, to be resumed).

Nothing here prints: ``notify`` receives the informational lines (waits, renewals, redirects), ``progress`` the
bytes of each file, and every message is redacted of the credentials' values.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plotsm.acquire.checksum import from_odata
from plotsm.acquire.client import Auth, Client, DownloadError, Notify, RetryPolicy, UnreachableError
from plotsm.acquire.credentials import Credentials
from plotsm.acquire.endpoints import CDSE_MAX_TRANSFERS, Endpoints, Origin, origin
from plotsm.acquire.files import FileJob, Selection, Skip, select_files
from plotsm.acquire.manifest import Manifest, folder_lock
from plotsm.acquire.plan import Plan
from plotsm.acquire.token import ApiKeyAuth, BearerAuth, TokenSource
from plotsm.acquire.transfer import Fetched, fetch_file, hash_file, part_path
from plotsm.atomic import writable_dir
from plotsm.errors import StorageError, UsageError, option
from plotsm.progress import Progress

#: Transfers at most when only GEODES serves the plan [D: GEODES publishes no limit; 8 keeps a laptop's link busy
#: without hammering the portal].
MAX_TRANSFERS = 8


@dataclass(frozen=True)
class DownloadSettings:
    """How to download: ``transfers`` at a time, S1 in part (``s1_partial``), and the retry policy."""

    transfers: int = CDSE_MAX_TRANSFERS
    s1_partial: bool = False
    retries: int = 5
    retry_wait_s: float = 2.0
    max_wait_s: float = 300.0
    timeout_s: float = 60.0

    def check(self, providers: set[str]) -> None:
        """:class:`UsageError` for settings out of range (``providers``: those serving the plan)."""
        if "cdse" in providers and self.transfers > CDSE_MAX_TRANSFERS:
            raise UsageError(f"{option('transfers', self.transfers)}: CDSE allows at most {CDSE_MAX_TRANSFERS} "
                             f"concurrent connections per account (its quotas); pass {option('transfers', 4)} "
                             "or fewer.")
        if not 1 <= self.transfers <= MAX_TRANSFERS:
            raise UsageError(f"{option('transfers', self.transfers)}: expected 1 to {MAX_TRANSFERS} transfers.")
        if self.retries < 0 or self.retry_wait_s < 0 or self.timeout_s <= 0 or self.max_wait_s < 0:
            raise UsageError(f"{option('retries', self.retries)}, {option('retry_wait', self.retry_wait_s)}, "
                             f"{option('timeout', self.timeout_s)}: expected numbers >= 0 (a timeout > 0).")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(retries=self.retries, retry_wait_s=self.retry_wait_s, max_wait_s=self.max_wait_s,
                           timeout_s=self.timeout_s)


@dataclass(frozen=True)
class Failure:
    """A file (``what``: its path under the folder, or item and asset) that was not downloaded, and why."""

    what: str
    reason: str


@dataclass(frozen=True)
class PartialSaving:
    """S1 products fetched in part: their files' bytes against the whole products' (``n_unknown`` products
    without a known size are left out of both)."""

    n_products: int
    part_bytes: int
    whole_bytes: int
    n_unknown: int


@dataclass
class DownloadReport:
    """What a run did: files downloaded (with how each was checked), already present, skipped, failed."""

    downloaded: list[tuple[FileJob, Fetched]] = field(default_factory=list)
    present: list[FileJob] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    partial: PartialSaving | None = None

    @property
    def bytes_received(self) -> int:
        return sum(f.received for _, f in self.downloaded)

    def checks(self) -> Counter[str]:
        """How many downloaded files were checked each way (``md5``, ``size``, …)."""
        return Counter(f.verified for _, f in self.downloaded)


class Download:
    """A prepared download (:func:`prepare_download`): ``todo`` to fetch, ``present`` already there, ``skipped``
    and ``failed`` before any transfer. A context manager: leaving it releases the folder and the connections."""

    def __init__(self, root: Path, selection: Selection, manifest: Manifest, client: Client,
                 settings: DownloadSettings, stack: ExitStack) -> None:
        self.root, self.selection, self.manifest, self.client, self.settings = root, selection, manifest, client, settings
        self._stack = stack
        self.todo: list[FileJob] = []
        self.present: list[FileJob] = []
        self.skipped: list[Skip] = list(selection.skipped)
        self.failed: list[Failure] = [Failure(f"{p.item_id} {p.what}", p.reason) for p in selection.problems]
        self.whole_sizes: dict[str, int | None] = {}
        self.auth: dict[str, Auth] = {}
        self.tokens: TokenSource | None = None
        self._down: dict[Origin, str] = {}

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()
        self._stack.close()

    @property
    def todo_bytes(self) -> int:
        """Bytes still to fetch, of the files whose size is known (``.part`` bytes already there deducted)."""
        return sum(max(0, (j.expected.size or 0) - self._part_size(j)) for j in self.todo)

    def run(self, progress: Progress | None = None) -> DownloadReport:
        """Fetch ``todo`` (see the module docstring)."""
        report = DownloadReport(present=list(self.present), skipped=list(self.skipped), failed=list(self.failed))
        pool = ThreadPoolExecutor(max_workers=self.settings.transfers, thread_name_prefix="plotsm-download")
        futures: dict[Future[Fetched | None], FileJob] = {}
        try:
            futures = {pool.submit(self._fetch, job, progress): job for job in self.todo}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    fetched = future.result()
                except DownloadError as exc:
                    reason = self.client.redact(str(exc)) + (f" ({job.note})" if job.note else "")
                    report.failed.append(Failure(job.relpath, reason))
                    continue
                if fetched is None:
                    report.present.append(job)
                else:
                    report.downloaded.append((job, fetched))
        except BaseException:
            self.client.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        order = {job.relpath: i for i, job in enumerate(self.selection.jobs)}
        report.downloaded.sort(key=lambda pair: order[pair[0].relpath])
        report.partial = self._saving()
        return report

    def _fetch(self, job: FileJob, progress: Progress | None) -> Fetched | None:
        where = origin(job.url)
        if where in self._down:
            raise DownloadError(f"not tried: {self._down[where]}")
        target = self.root / job.relpath
        if target.is_file() and job.expected.checkable and job.expected.algorithm:
            if hash_file(target, job.expected.algorithm) == job.expected.digest:  # there, but not in the manifest
                self.manifest.record(job.relpath, _entry(job, target.stat().st_size, job.expected.algorithm,
                                                         str(job.expected.digest), job.expected.how))
                return None

        def report(done: int, total: int | None) -> None:
            if progress is not None:
                progress(job.relpath, done, total or 0)

        try:
            fetched = fetch_file(self.client, job.url, target, job.expected, auth=self.auth.get(job.provider),
                                 progress=report)
        except UnreachableError as exc:
            self._down.setdefault(where, str(exc))
            raise
        self.manifest.record(job.relpath, _entry(job, fetched.size, fetched.algorithm, fetched.digest,
                                                 fetched.verified))
        return fetched

    def _part_size(self, job: FileJob) -> int:
        try:
            return part_path(self.root / job.relpath).stat().st_size
        except OSError:
            return 0

    def _saving(self) -> PartialSaving | None:
        products = self.selection.partial_products
        if not products:
            return None
        part_bytes, whole_bytes, unknown = 0, 0, 0
        for name in products:
            whole = self.whole_sizes.get(name)
            if whole is None:
                unknown += 1
                continue
            whole_bytes += whole
            for job in self.selection.jobs:
                if job.product == name and (self.root / job.relpath).is_file():
                    part_bytes += (self.root / job.relpath).stat().st_size
        return PartialSaving(len(products), part_bytes, whole_bytes, unknown)


def prepare_download(plan: Plan, out_dir: str | Path, *, credentials: Credentials, endpoints: Endpoints | None = None,
                     settings: DownloadSettings | None = None, notify: Notify | None = None) -> Download:
    """A :class:`Download` of ``plan`` into ``out_dir``, ready to :meth:`~Download.run` (see the module docstring).
    Raises :class:`UsageError` (settings), :class:`~plotsm.errors.ConfigurationError` (credentials missing or
    refused), :class:`StorageError` (folder, lock, disk space), :class:`DownloadError` (CDSE's token endpoint)."""
    endpoints = endpoints or Endpoints()
    settings = settings or DownloadSettings()
    selection = select_files(plan.items, endpoints, s1_partial=settings.s1_partial)
    settings.check({job.provider for job in selection.jobs})
    root = writable_dir(out_dir, option("out"))
    stack = ExitStack()
    stack.enter_context(folder_lock(root))
    try:
        client = Client(settings.policy(), notify=notify, redact=credentials.redact)
        download = Download(root, selection, Manifest.load(root), client, settings, stack)
    except BaseException:
        stack.close()
        raise
    try:
        _prepare(download, credentials, endpoints)
    except BaseException:
        download.close()
        raise
    return download


def _prepare(download: Download, credentials: Credentials, endpoints: Endpoints) -> None:
    manifest, selection = download.manifest, download.selection
    for job in selection.jobs:
        (download.present if manifest.is_present(job.relpath, job.expected) else download.todo).append(job)
    providers = {job.provider for job in download.todo}
    login = credentials.require_cdse() if "cdse" in providers else None
    key = credentials.require_geodes() if "geodes" in providers else None
    _look_up_products(download, endpoints)
    free = shutil.disk_usage(download.root).free
    if download.todo_bytes > free:
        raise StorageError(f"{download.root}: {download.todo_bytes} bytes to download but {free} free. Free some "
                           f"space, or pass another {option('out')}.")
    if login is not None and any(job.provider == "cdse" for job in download.todo):
        download.tokens = TokenSource(endpoints.token_url, login, credentials, timeout_s=download.settings.timeout_s)
        download.tokens.bearer()  # log in now: wrong credentials stop everything before any transfer
        download.auth["cdse"] = BearerAuth(download.tokens, endpoints.cdse_origins())
    if key is not None:
        download.auth["geodes"] = ApiKeyAuth(key.key, endpoints.geodes_origins())


def _look_up_products(download: Download, endpoints: Endpoints) -> None:
    """Size and checksum of whole S1 products from their OData JSON; the whole size of products fetched in part."""
    whole = {job.odata_id for job in download.todo if job.odata_id}
    partial = {pid: name for name, pid in download.selection.partial_products.items()
               if any(job.product == name for job in download.todo)}
    ids = sorted(whole | set(partial))
    if not ids:
        return
    with ThreadPoolExecutor(max_workers=download.settings.transfers) as pool:
        answers = dict(zip(ids, pool.map(lambda pid: _product_json(download.client, endpoints, pid), ids)))
    for pid, name in partial.items():
        answer = answers[pid]
        download.whole_sizes[name] = from_odata(answer).size if isinstance(answer, Mapping) else None
    kept = []
    for job in download.todo:
        if job.odata_id is None:
            kept.append(job)
            continue
        answer = answers[job.odata_id]
        if isinstance(answer, str):
            download.failed.append(Failure(job.relpath, answer))
        elif answer.get("Online") is False:
            download.skipped.append(Skip(job.item_id, job.relpath, "offline at CDSE (OData Online: false): it is "
                                                                   "being restored from the archive; run again later"))
        else:
            kept.append(replace(job, expected=from_odata(answer)))
    download.todo = kept


def _product_json(client: Client, endpoints: Endpoints, product_id: str) -> Mapping[str, Any] | str:
    """The OData JSON of a product, or the reason it could not be read."""
    url = endpoints.product_url(product_id)
    try:
        answer = client.get_json(url)
    except DownloadError as exc:
        return client.redact(str(exc))
    if isinstance(answer, Mapping) and isinstance(answer.get("value"), list) and answer["value"]:
        answer = answer["value"][0]  # a collection answer (…/Products?$filter=Id eq …) holds the product
    return answer if isinstance(answer, Mapping) else f"{url}: not the JSON of an OData product"


def _entry(job: FileJob, size: int, algorithm: str, digest: str, verified: str) -> dict[str, Any]:
    return {"item": job.item_id, "collection": job.collection, "asset": job.asset, "href": job.href, "size": size,
            "checksum": {"algorithm": algorithm, "value": digest}, "verified": verified}


def download_plan(plan: Plan, out_dir: str | Path, *, credentials: Credentials, endpoints: Endpoints | None = None,
                  settings: DownloadSettings | None = None, notify: Notify | None = None,
                  progress: Progress | None = None) -> DownloadReport:
    """:func:`prepare_download` and :meth:`Download.run` in one call."""
    with prepare_download(plan, out_dir, credentials=credentials, endpoints=endpoints, settings=settings,
                          notify=notify) as download:
        return download.run(progress)


def failures_of(items: Sequence[Failure]) -> Iterator[str]:
    """One line per failure: ``what: reason``."""
    for failure in items:
        yield f"{failure.what}: {failure.reason}"


__all__ = ["MAX_TRANSFERS", "Download", "DownloadReport", "DownloadSettings", "Failure", "PartialSaving",
           "download_plan", "failures_of", "prepare_download"]
