"""Check a built bundle: MLX in, torch out. Run by both build scripts after PyInstaller.

    python packaging/check_bundle.py BUNDLE_DIR EXECUTABLE [--metal]

Lists the bundle's files and the modules in the executable's archive and exits 1, naming them,
when torch, llada_torch or the training code got in, or when the MLX backend, MLX's libraries
or the demo model are missing. --metal (macOS) also wants mlx.metallib beside libmlx.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import posixpath
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Optional

from common import is_excluded

# Our modules that must be in the archive: the window, the command line, the MLX backend and
# the part of llada_train that `llada make-tiny` / `llada eval` use.
REQUIRED_MODULES = ("app.cli", "app.ui.main_window", "llada_core", "llada_mlx",
                    "llada_mlx.sampler", "llada_train.tiny", "llada_train.demo_tasks")
# Files (fnmatch patterns on a path's tail) that must be there.
REQUIRED_FILES = ("mlx/core.*", "app/resources/llada-demo/model.safetensors",
                  "app/resources/llada-demo/tokenizer.json", "llada_train/data/tiny_corpus.txt")
TORCH_FOLDERS = ("torch", "llada_torch", "functorch", "torchgen")
TORCH_LIBRARIES = ("libtorch*", "libc10*", "libshm.so*")  # Qt has a libshm-emulation-server


def _matches_tail(path: str, pattern: str) -> bool:
    depth = pattern.count("/") + 1
    tail = "/".join(path.split("/")[-depth:])
    return fnmatch.fnmatch(tail, pattern)


def bundle_problems(files: Sequence[str], modules: Sequence[str], *, metal: bool,
                    links: Collection[str] = ()) -> list[str]:
    """What is wrong with a bundle holding `files` (paths relative to it, '/'-separated; those
    in `links` are symbolic links) and `modules` (the names in its Python archive); empty when
    nothing is."""
    problems = []
    torch_files = [f for f in files
                   if any(part in TORCH_FOLDERS for part in f.split("/")[:-1])
                   or any(fnmatch.fnmatch(posixpath.basename(f), p) for p in TORCH_LIBRARIES)]
    if torch_files:
        problems.append(f"torch files in the bundle ({len(torch_files)}): {torch_files[:10]}")
    bad_modules = [m for m in modules if is_excluded(m)]
    if bad_modules:
        problems.append(f"modules that must not be bundled ({len(bad_modules)}): "
                        f"{bad_modules[:10]}")
    names = set(modules)
    missing = [m for m in REQUIRED_MODULES if m not in names]
    if missing:
        problems.append(f"modules missing from the archive: {missing}")
    for pattern in REQUIRED_FILES:
        if not any(_matches_tail(f, pattern) for f in files):
            problems.append(f"no file matching */{pattern}")
    # PyInstaller links libraries into the top folder; a link is harmless, a second copy is not
    libmlx = [f for f in files if posixpath.basename(f).startswith("libmlx") and f not in links]
    libmlx_dirs = sorted({posixpath.dirname(f) for f in libmlx})
    if not libmlx:
        problems.append("no libmlx in the bundle")
    elif len(libmlx) > 1:
        problems.append(f"{len(libmlx)} copies of libmlx, one expected: {libmlx}")
    if metal:
        metallib_dirs = {posixpath.dirname(f) for f in files
                         if posixpath.basename(f) == "mlx.metallib"}
        if not any(d in metallib_dirs for d in libmlx_dirs):
            problems.append(f"no libmlx beside mlx.metallib: libmlx in {libmlx_dirs}, "
                            f"mlx.metallib in {sorted(metallib_dirs)}")
    return problems


def bundle_files(bundle: Path) -> list[str]:
    """Every file and link under `bundle` (a macOS app links files between Frameworks and
    Resources), relative and '/'-separated."""
    found = []
    for folder, dirs, names in os.walk(bundle):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            found.append(Path(folder, name).relative_to(bundle).as_posix())
    return found


def archive_modules(executable: Path) -> list[str]:
    from PyInstaller.archive.readers import pkg_archive_contents

    return pkg_archive_contents(str(executable), recursive=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("executable", type=Path)
    parser.add_argument("--metal", action="store_true", help="macOS: MLX on Metal")
    args = parser.parse_args(argv)
    files = bundle_files(args.bundle)
    modules = archive_modules(args.executable)
    links = {f for f in files if (args.bundle / f).is_symlink()}
    problems = bundle_problems(files, modules, metal=args.metal, links=links)
    for problem in problems:
        print(f"check_bundle: {args.bundle}: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_bundle: {args.bundle}: OK ({len(files)} files, {len(modules)} archived "
          "entries; MLX in, torch out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
