"""Downloads through the real huggingface_hub client, over real HTTP, from a local fake Hub."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.models.download import (
    DownloadCancelled, DownloadError, ModelDownload, cached_model, delete_model,
    downloaded_snapshot,
)
from app.models.local import validate_model_folder

REPO = "tiny-org/LLaDA-tiny"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub(fake_hub):
    return fake_hub(REPO)


@pytest.mark.parametrize("cdn", [True, False], ids=["weights-on-cdn", "all-on-hub"])
def test_download_reaches_100_percent_and_is_a_usable_model(hub, tmp_path, cdn):
    hub.cdn = cdn
    seen = []
    folder = ModelDownload(REPO, cache_dir=tmp_path / "hub", endpoint=hub.url,
                           on_progress=seen.append, progress_interval=0).run()
    assert seen[-1].done == seen[-1].total == sum(len(d) for d in hub.repos[REPO].files.values())
    assert seen[-1].fraction == 1.0 and "of" in seen[-1].text()
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert len(seen) > 3
    for name, data in hub.repos[REPO].files.items():
        assert (folder / name).read_bytes() == data
    assert validate_model_folder(folder).layout == "hf"
    # huggingface_hub's cache now knows it: found offline, and scan_cache_dir lists it
    assert downloaded_snapshot(REPO, tmp_path / "hub") == folder
    assert cached_model(REPO, tmp_path / "hub").revisions == [hub.repos[REPO].commit]
    # the weights came from the "CDN" host the Hub redirected to, without a second redirect
    assert all(r.path.startswith("/cdn/") == cdn for r in hub.requests
               if r.method == "GET" and r.path.endswith(".safetensors"))
    # only what a checkpoint needs was asked for, never code
    assert all(".py" not in r.path for r in hub.requests)


def test_cancel_leaves_no_model_and_the_next_run_resumes_with_a_range(hub, tmp_path):
    cache = tmp_path / "hub"
    hub.delay_per_chunk = 0.01
    download = ModelDownload(REPO, cache_dir=cache, endpoint=hub.url, progress_interval=0)

    def cancel_midway(progress):
        if progress.done > progress.total * 0.4:
            download.cancel()

    download.on_progress = cancel_midway
    with pytest.raises(DownloadCancelled, match="cancelled"):
        download.run()
    assert downloaded_snapshot(REPO, cache) is None          # nothing registered as usable
    assert not (cache / "models--tiny-org--LLaDA-tiny" / "snapshots").exists()
    partial = list(cache.glob("*/blobs/*.incomplete"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0
    kept = partial[0].stat().st_size

    hub.delay_per_chunk = 0.0
    hub.requests.clear()
    seen = []
    again = ModelDownload(REPO, cache_dir=cache, endpoint=hub.url, on_progress=seen.append)
    plan = again.plan()
    assert plan.have_bytes >= kept and plan.needed_bytes < plan.total_bytes
    folder = again.run()
    ranged = [r for r in hub.requests if r.method == "GET" and "Range" in r.headers]
    assert len(ranged) == 1 and ranged[0].headers["Range"] == f"bytes={kept}-"
    assert seen[0].done >= kept and seen[-1].done == seen[-1].total
    for name, data in hub.repos[REPO].files.items():
        assert (folder / name).read_bytes() == data
    assert not list(cache.glob("*/blobs/*.incomplete"))
    assert downloaded_snapshot(REPO, cache) == folder


def test_a_dropped_connection_resumes_with_a_range(hub, tmp_path):
    name = sorted(n for n in hub.repos[REPO].files if n.endswith(".safetensors"))[0]
    cut = len(hub.repos[REPO].files[name]) // 2
    hub.drop_after[name] = cut
    folder = ModelDownload(REPO, cache_dir=tmp_path / "hub", endpoint=hub.url).run()
    gets = hub.file_gets(name)
    assert len(gets) == 2 and "Range" not in gets[0].headers
    start = int(gets[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert cut <= start < len(hub.repos[REPO].files[name])
    assert (folder / name).read_bytes() == hub.repos[REPO].files[name]


def test_unknown_repo_gives_one_clear_message(hub, tmp_path):
    with pytest.raises(DownloadError, match="There is no model called nobody/nothing"):
        ModelDownload("nobody/nothing", cache_dir=tmp_path / "hub", endpoint=hub.url).run()
    with pytest.raises(DownloadError, match="not a Hub repo id"):
        ModelDownload("just-a-name", cache_dir=tmp_path / "hub", endpoint=hub.url).run()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_gives_one_clear_message(online, tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(DownloadError, match="Cannot reach") as caught:
        ModelDownload(REPO, cache_dir=tmp_path / "hub", endpoint=endpoint).run()
    assert "\n" not in str(caught.value)


def test_offline_mode_says_so(tmp_path, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        ModelDownload(REPO, cache_dir=tmp_path / "hub").run()


def test_not_enough_disk_space_is_refused_before_downloading(hub, tmp_path, monkeypatch):
    import app.models.download as download_mod

    monkeypatch.setattr(download_mod, "free_space", lambda folder: 1000)
    with pytest.raises(DownloadError, match="more disk space, but only 1.0 KB is free"):
        ModelDownload(REPO, cache_dir=tmp_path / "hub", endpoint=hub.url).run()
    assert not [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]


def test_delete_frees_the_space(hub, tmp_path):
    cache = tmp_path / "hub"
    ModelDownload(REPO, cache_dir=cache, endpoint=hub.url).run()
    size = sum(len(d) for d in hub.repos[REPO].files.values())
    found = cached_model(REPO, cache)
    assert found.size_bytes == size
    assert delete_model(REPO, cache) == size
    assert cached_model(REPO, cache) is None and downloaded_snapshot(REPO, cache) is None
    assert delete_model(REPO, cache) == 0


def test_cli_download(hub, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(ROOT), "HF_HUB_DISABLE_TELEMETRY": "1"}
    ok = subprocess.run([sys.executable, "-m", "app.cli", "download", REPO, "--endpoint", hub.url],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "100%" in ok.stderr and "models--tiny-org--LLaDA-tiny" in ok.stdout
    assert list((tmp_path / "hf" / "hub").glob("models--tiny-org--LLaDA-tiny/snapshots/*/config.json"))
    missing = subprocess.run([sys.executable, "-m", "app.cli", "download", "nobody/nothing",
                              "--endpoint", hub.url], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2
    assert "There is no model called nobody/nothing" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_quit_mid_download_then_resume_from_the_command_line(hub, tmp_path):
    """Kill `llada download` half way (as quitting would); the next run resumes with a Range."""
    import time

    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(ROOT), "HF_HUB_DISABLE_TELEMETRY": "1",
           "LLADA_DOWNLOAD_CHUNK_BYTES": str(16 * 1024)}
    hub.hold_after = 128 * 1024
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "download", REPO,
                                "--endpoint", hub.url], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert hub.holding.wait(60), "the download never got going"
    deadline = time.time() + 60
    partial = []
    while time.time() < deadline and not partial:    # the client writes what it has read
        partial = [p for p in (tmp_path / "hf" / "hub").glob("*/blobs/*.incomplete")
                   if p.stat().st_size >= 64 * 1024]
        time.sleep(0.05)
    process.kill()
    process.wait(30)
    hub.release.set()
    assert partial, "nothing was written before the quit"
    kept = partial[0].stat().st_size
    hub.hold_after = None
    hub.requests.clear()
    done = subprocess.run([sys.executable, "-m", "app.cli", "download", REPO,
                           "--endpoint", hub.url], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    ranges = [r.headers["Range"] for r in hub.requests if "Range" in r.headers]
    assert ranges and int(ranges[0].removeprefix("bytes=").rstrip("-")) >= kept
    assert "already here" in done.stderr
