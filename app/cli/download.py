"""`llada download REPO_ID`: fetch a model into huggingface_hub's cache, with a progress bar."""

from __future__ import annotations

import argparse
import shutil
import sys

from app.models.catalog import CATALOG
from app.models.units import format_bytes


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "download", help="download a model from the Hugging Face Hub",
        description="Download a LLaDA model (config, tokenizer, safetensors; never code) into "
                    "huggingface_hub's standard cache. An interrupted download resumes where it "
                    "stopped. Known models:\n" + "\n".join(
                        f"  {e.repo_id:44} {e.size_text:>8}  {e.backend}" for e in CATALOG),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repo_id", nargs="?", help="Hub repo id, e.g. GSAI-ML/LLaDA-8B-Instruct")
    parser.add_argument("--list", action="store_true", help="list the known models and exit")
    parser.add_argument("--revision", default=None, help="branch, tag or commit (default main)")
    parser.add_argument("--cache-dir", default=None,
                        help="huggingface_hub cache folder (default: $HF_HUB_CACHE / $HF_HOME/hub)")
    parser.add_argument("--endpoint", default=None, help="Hub address (default: $HF_ENDPOINT)")
    parser.set_defaults(run=run)


def bar_line(progress, width: int) -> str:
    percent = int(progress.fraction * 100)
    text = f" {percent:3d}%  {progress.text()}"
    cells = max(10, min(40, width - len(text) - 3))
    filled = int(progress.fraction * cells)
    return f"[{'#' * filled}{'.' * (cells - filled)}]{text}"


def check_writable_folder(path: str) -> None:
    """Before any network: the cache folder exists or can be made, and takes a file (raises
    OSError naming it)."""
    import tempfile
    from pathlib import Path

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryFile(dir=folder).close()


def run(args: argparse.Namespace) -> int:
    from app.models.download import DownloadError, ModelDownload, hub_cache_dir

    if args.list or not args.repo_id:
        for entry in CATALOG:
            print(f"{entry.repo_id:44} {entry.size_text:>8} on disk, "
                  f"{entry.memory_text:>8} memory  ({entry.backend})")
        return 0 if args.list else 2
    interactive = sys.stderr.isatty()
    width = shutil.get_terminal_size((80, 20)).columns
    state = {"shown": -1}

    def show(progress) -> None:
        percent = int(progress.fraction * 100)
        if interactive:
            sys.stderr.write("\r" + bar_line(progress, width).ljust(width - 1)[: width - 1])
            sys.stderr.flush()
        elif percent // 10 != state["shown"] // 10 or percent == 100 and state["shown"] != 100:
            print(bar_line(progress, width), file=sys.stderr, flush=True)
        state["shown"] = percent

    if args.cache_dir:
        check_writable_folder(args.cache_dir)
    download = ModelDownload(args.repo_id, cache_dir=args.cache_dir, endpoint=args.endpoint,
                             revision=args.revision, on_progress=show, progress_interval=0.2)
    try:
        plan = download.plan()
        print(f"{args.repo_id}: {len(plan.files)} files, {format_bytes(plan.total_bytes)}"
              + (f" ({format_bytes(plan.have_bytes)} already here)" if plan.have_bytes else "")
              + f" → {hub_cache_dir(args.cache_dir)}", file=sys.stderr)
        folder = download.run()
    except DownloadError as error:
        if interactive and state["shown"] >= 0:
            print(file=sys.stderr)
        print(f"llada download: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nllada download: stopped; run the same command again to resume.", file=sys.stderr)
        return 130
    if interactive:
        print(file=sys.stderr)
    print(folder)
    return 0
