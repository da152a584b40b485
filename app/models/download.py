"""Downloading a model from the Hugging Face Hub into huggingface_hub's standard cache.

`ModelDownload(repo_id).run()` lists the repo's files (only what a LLaDA checkpoint needs:
config, tokenizer, safetensors; never code), checks free disk space, then fetches each missing
file with huggingface_hub's own HTTP client into the cache's `blobs/<etag>.incomplete` file,
resuming with a Range request from whatever is already there (after a cancel, a quit or a
dropped connection), and finally lets `snapshot_download` register the snapshot (its refs,
tree listing and file pointers). Until that last step nothing of the model is visible as a
snapshot, so a cancelled download never leaves a half model that looks usable.

Progress reaches the caller as `DownloadProgress` through a callback, bridged from the tqdm
hook that huggingface_hub calls for every chunk; `cancel()` (any thread) stops at the next chunk.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

from app.models.units import format_bytes, format_duration
from llada_core.checkpoint import CHECKPOINT_PATTERNS

log = logging.getLogger(__name__)


# huggingface_hub reads the network in 10 MB pieces; 1 MiB makes progress smoother, a cancel
# quicker and a quit lose less (LLADA_DOWNLOAD_CHUNK_BYTES overrides it, e.g. in tests).
CHUNK_BYTES = 1024 * 1024


def _use_small_chunks() -> None:
    from huggingface_hub import constants

    wanted = int(os.environ.get("LLADA_DOWNLOAD_CHUNK_BYTES") or CHUNK_BYTES)
    constants.DOWNLOAD_CHUNK_SIZE = min(constants.DOWNLOAD_CHUNK_SIZE, wanted)


class QuietTqdm:
    """A tqdm look-alike that shows nothing; a subclass hears of progress through advanced()."""

    def __init__(self, *args, **kwargs):
        self.n = kwargs.get("initial", 0) or 0
        self.total = kwargs.get("total")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __iter__(self):
        return iter(())

    def update(self, n=1):
        n = int(n or 0)
        self.n += n
        self.advanced(n)

    def advanced(self, n: int) -> None:
        pass

    def close(self):
        pass

    def refresh(self, *args, **kwargs):
        pass

    def set_description(self, *args, **kwargs):
        pass

    set_description_str = set_postfix_str = set_description


class DownloadError(RuntimeError):
    """A download that cannot start or finish; str() is one sentence for the user."""


class DownloadCancelled(DownloadError):
    pass


@dataclass
class DownloadProgress:
    done: int                    # bytes on disk for this model (cached + partial + new)
    total: int
    speed: float                 # bytes per second over the last few seconds
    filename: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0

    @property
    def seconds_left(self) -> Optional[float]:
        if self.speed <= 0:
            return None
        return max(self.total - self.done, 0) / self.speed

    def text(self) -> str:
        line = f"{format_bytes(self.done)} of {format_bytes(self.total)}"
        if self.speed > 0 and self.done < self.total:
            line += (f" · {format_bytes(self.speed)}/s"
                     f" · {format_duration(self.seconds_left)} left")
        return line


@dataclass
class RemoteFile:
    name: str
    size: int
    etag: str = ""
    url: str = ""
    cached: bool = False         # the cache already has the whole file
    partial: int = 0             # bytes of it already in <etag>.incomplete


@dataclass
class DownloadPlan:
    repo_id: str
    commit: str
    files: list[RemoteFile] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def have_bytes(self) -> int:
        return sum(f.size if f.cached else f.partial for f in self.files)

    @property
    def needed_bytes(self) -> int:
        return self.total_bytes - self.have_bytes


def hub_cache_dir(cache_dir: Optional[str | os.PathLike] = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def free_space(folder: Path) -> int:
    """Free bytes on the volume that holds `folder` (or its nearest existing parent)."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def where_of(endpoint: Optional[str]) -> str:
    return endpoint or "the Hugging Face Hub"


def explain(error: BaseException, repo_id: str, endpoint: Optional[str] = None) -> str:
    """One sentence for anything that can go wrong talking to the Hub."""
    import httpx2
    from huggingface_hub import errors

    where = where_of(endpoint)
    if isinstance(error, DownloadError):
        return str(error)
    if isinstance(error, errors.OfflineModeIsEnabled):
        return ("Downloads are switched off (HF_HUB_OFFLINE is set); unset it to download "
                f"{repo_id}.")
    if isinstance(error, errors.GatedRepoError):
        return (f"{repo_id} is gated: accept its terms on the Hub and log in with "
                "`hf auth login` first.")
    if isinstance(error, errors.RevisionNotFoundError):
        return f"{repo_id} has no such revision on {where}."
    if isinstance(error, errors.RepositoryNotFoundError):
        return (f"There is no model called {repo_id} on {where} (check the spelling; private "
                "repos need a login).")
    if isinstance(error, (httpx2.TransportError, ConnectionError, TimeoutError)):
        return (f"Cannot reach {where}: check the internet connection and try again "
                "(what was already downloaded is kept and the download resumes).")
    if isinstance(error, errors.HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        return f"{where} answered with an error{f' (HTTP {status})' if status else ''} for {repo_id}."
    if isinstance(error, OSError):
        return f"Could not write the download: {error.strerror or error}."
    return f"The download of {repo_id} failed: {type(error).__name__}: {error}"


class ModelDownload:
    """One model's download; `run()` blocks (call it off the GUI thread), `cancel()` from anywhere."""

    def __init__(self, repo_id: str, *, cache_dir: Optional[str | os.PathLike] = None,
                 endpoint: Optional[str] = None, revision: Optional[str] = None,
                 on_progress: Optional[Callable[[DownloadProgress], None]] = None,
                 patterns: Optional[list[str]] = None, progress_interval: float = 0.1):
        self.repo_id = repo_id.strip()
        self.cache_dir = hub_cache_dir(cache_dir)
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.revision = revision or "main"
        self.on_progress = on_progress
        self.patterns = list(patterns or CHECKPOINT_PATTERNS)
        self.progress_interval = progress_interval
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0
        self._filename = ""
        self._samples: deque[tuple[float, int]] = deque(maxlen=50)
        self._last_emit = 0.0
        self.plan_result: Optional[DownloadPlan] = None

    # --- control -------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise DownloadCancelled(
                f"The download of {self.repo_id} was cancelled; what was downloaded is kept "
                "and the next download resumes from there.")

    # --- progress ------------------------------------------------------------------------
    def _advance(self, n: int) -> None:
        self._check_cancel()
        with self._lock:
            self._done += n
            now = time.monotonic()
            self._samples.append((now, self._done))
            if now - self._last_emit < self.progress_interval and self._done < self._total:
                return
            self._last_emit = now
        self._emit()

    def _speed(self) -> float:
        """Bytes per second over the recent samples; falls towards 0 while nothing arrives."""
        samples = list(self._samples)
        if len(samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = samples[0], samples[-1]
        now = time.monotonic()
        end = now if now - t1 > 1.0 else t1
        return (b1 - b0) / (end - t0) if end > t0 else 0.0

    def progress(self) -> DownloadProgress:
        return DownloadProgress(self._done, self._total, self._speed(), self._filename)

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())

    def _tqdm_class(self):
        """A tqdm look-alike that huggingface_hub's http_get drives chunk by chunk."""
        download = self

        class ProgressHook(QuietTqdm):
            def advanced(self, n: int) -> None:
                download._advance(n)

        return ProgressHook

    # --- the work ------------------------------------------------------------------------
    def _api(self):
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint)

    def plan(self) -> DownloadPlan:
        """Ask the Hub what the model's files are and what of them the cache already has."""
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url, try_to_load_from_cache
        from huggingface_hub.utils import filter_repo_objects

        if constants.is_offline_mode():
            from huggingface_hub.errors import OfflineModeIsEnabled

            raise DownloadError(explain(OfflineModeIsEnabled(), self.repo_id))
        if self.repo_id.count("/") != 1 or not all(self.repo_id.split("/")):
            raise DownloadError(f"{self.repo_id!r} is not a Hub repo id (it looks like owner/name).")
        try:
            info = self._api().model_info(self.repo_id, revision=self.revision, files_metadata=True)
            siblings = {s.rfilename: s for s in (info.siblings or [])}
            names = sorted(filter_repo_objects(siblings, allow_patterns=self.patterns))
            if not any(n.endswith(".safetensors") for n in names):
                raise DownloadError(
                    f"{self.repo_id} has no safetensors weights, so it cannot be used here.")
            plan = DownloadPlan(self.repo_id, info.sha)
            blobs = self.storage / "blobs"
            for name in names:
                self._check_cancel()
                cached = try_to_load_from_cache(self.repo_id, name, cache_dir=self.cache_dir,
                                                revision=info.sha)
                if isinstance(cached, str) and os.path.exists(cached):
                    plan.files.append(RemoteFile(name, os.path.getsize(cached), cached=True))
                    continue
                url = hf_hub_url(self.repo_id, name, revision=info.sha, endpoint=self.endpoint)
                meta = get_hf_file_metadata(url, endpoint=self.endpoint)
                size = meta.size if meta.size is not None else (siblings[name].size or 0)
                # As huggingface_hub does: a redirect to a CDN is followed directly (and gets no
                # token); a Xet-backed file is fetched through its resolve URL.
                location = meta.location if meta.xet_file_data is None and meta.location else url
                remote = RemoteFile(name, size, etag=meta.etag or "", url=location)
                if not meta.etag:
                    raise DownloadError(f"{where_of(self.endpoint)} sent no ETag for {name}; "
                                        "the download cannot be checked, so it was not started.")
                if remote.etag and (blobs / remote.etag).is_file():
                    remote.cached = True
                elif remote.etag and (blobs / f"{remote.etag}.incomplete").is_file():
                    remote.partial = min((blobs / f"{remote.etag}.incomplete").stat().st_size, size)
                plan.files.append(remote)
        except DownloadError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure becomes one sentence
            log.warning("planning the download of %s failed", self.repo_id, exc_info=True)
            raise DownloadError(explain(error, self.repo_id, self.endpoint)) from error
        self.plan_result = plan
        return plan

    @property
    def _endpoint_url(self) -> str:
        from huggingface_hub import constants

        return self.endpoint or constants.ENDPOINT

    @property
    def storage(self) -> Path:
        from huggingface_hub.file_download import repo_folder_name

        return self.cache_dir / repo_folder_name(repo_id=self.repo_id, repo_type="model")

    def check_disk_space(self, plan: DownloadPlan) -> None:
        free = free_space(self.cache_dir)
        needed = plan.needed_bytes
        if needed > free:
            raise DownloadError(
                f"{self.repo_id} needs {format_bytes(needed)} more disk space, but only "
                f"{format_bytes(free)} is free in {self.cache_dir}.")

    def run(self) -> Path:
        """Download everything missing and return the snapshot folder."""
        plan = self.plan()
        self.check_disk_space(plan)
        self._total, self._done = plan.total_bytes, plan.have_bytes
        self._emit()
        try:
            for remote in plan.files:
                if not remote.cached:
                    self._fetch(remote)
            self._check_cancel()
            folder = self._register(plan)
        except DownloadError:
            raise
        except Exception as error:  # noqa: BLE001
            if isinstance(error.__context__, DownloadCancelled):
                raise error.__context__ from None
            log.warning("downloading %s failed", self.repo_id, exc_info=True)
            raise DownloadError(explain(error, self.repo_id, self.endpoint)) from error
        self._done = self._total
        self._emit()
        return folder

    def _fetch(self, remote: RemoteFile) -> None:
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import WeakFileLock, build_hf_headers

        self._check_cancel()
        _use_small_chunks()
        self._filename = remote.name
        blobs = self.storage / "blobs"
        blobs.mkdir(parents=True, exist_ok=True)
        blob = blobs / remote.etag
        partial = blobs / f"{remote.etag}.incomplete"
        lock_path = self.cache_dir / ".locks" / self.storage.name / f"{remote.etag}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with WeakFileLock(lock_path):
            if blob.is_file():      # another process finished it meanwhile
                self._advance(remote.size - remote.partial)
                return
            with open(partial, "ab") as handle:
                start = handle.tell()
                if start > remote.size:     # not ours: start over
                    handle.truncate(0)
                    self._advance(-start)
                    start = 0
                elif start != remote.partial:
                    self._advance(start - remote.partial)
                headers = build_hf_headers()
                headers["Accept-Encoding"] = "identity"
                if urlsplit(remote.url).netloc != urlsplit(self._endpoint_url).netloc:
                    headers.pop("authorization", None)      # a signed CDN address
                http_get(remote.url, handle, resume_size=start, headers=headers,
                         expected_size=remote.size, displayed_filename=remote.name,
                         tqdm_class=self._tqdm_class())
            os.replace(partial, blob)

    def _register(self, plan: DownloadPlan) -> Path:
        """huggingface_hub's snapshot_download finds every blob present and writes the snapshot."""
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(self.repo_id, revision=self.revision,
                                      cache_dir=self.cache_dir, endpoint=self.endpoint,
                                      allow_patterns=self.patterns, tqdm_class=QuietTqdm,
                                      max_workers=2))


def downloaded_snapshot(repo_id: str, cache_dir: Optional[str | os.PathLike] = None) -> Optional[Path]:
    """The complete cached snapshot of `repo_id` (main), or None; never touches the network."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, cache_dir=hub_cache_dir(cache_dir),
                                        allow_patterns=CHECKPOINT_PATTERNS,
                                        local_files_only=True))
    except Exception:  # noqa: BLE001 - not there, partial, or unreadable: not usable
        log.debug("cached snapshot not usable", exc_info=True)
        return None
    from llada_core.checkpoint import CheckpointError, weight_files

    try:
        weight_files(folder)
    except CheckpointError:
        return None
    return folder if (folder / "config.json").is_file() else None


@dataclass
class CachedModel:
    repo_id: str
    size_bytes: int
    revisions: list[str]
    partial_files: list[Path]


def cached_model(repo_id: str, cache_dir: Optional[str | os.PathLike] = None) -> Optional[CachedModel]:
    """What the cache holds of `repo_id` (complete revisions and partial downloads)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    root = hub_cache_dir(cache_dir)
    try:
        info = scan_cache_dir(root)
    except CacheNotFound:
        return None
    from huggingface_hub.file_download import repo_folder_name

    folder = root / repo_folder_name(repo_id=repo_id, repo_type="model")
    partial = sorted(f.file_path for f in info.incomplete_files
                     if Path(f.file_path).is_relative_to(folder))
    for repo in info.repos:
        if repo.repo_type == "model" and repo.repo_id.lower() == repo_id.lower():
            size = repo.size_on_disk + sum(p.stat().st_size for p in partial if p.exists())
            return CachedModel(repo.repo_id, size, [r.commit_hash for r in repo.revisions], partial)
    if partial:
        return CachedModel(repo_id, sum(p.stat().st_size for p in partial if p.exists()), [], partial)
    return None


def delete_model(repo_id: str, cache_dir: Optional[str | os.PathLike] = None) -> int:
    """Remove every cached revision (and partial download) of `repo_id`; returns bytes freed."""
    from huggingface_hub import scan_cache_dir

    found = cached_model(repo_id, cache_dir)
    if found is None:
        return 0
    freed = 0
    if found.revisions:
        strategy = scan_cache_dir(hub_cache_dir(cache_dir)).delete_revisions(*found.revisions)
        freed += strategy.expected_freed_size
        strategy.execute()
    for path in found.partial_files:
        if path.exists():
            freed += path.stat().st_size
            path.unlink()
    from huggingface_hub.file_download import repo_folder_name

    folder = hub_cache_dir(cache_dir) / repo_folder_name(repo_id=repo_id, repo_type="model")
    if folder.is_dir() and not any(p.is_file() and not p.is_symlink() for p in folder.rglob("*")
                                   if "blobs" in p.parts):
        shutil.rmtree(folder, ignore_errors=True)
    return freed

