"""MLX in a PyInstaller bundle: exactly one libmlx, the one beside mlx.metallib.

libmlx finds its Metal kernels (mlx.metallib) in its own folder. PyInstaller's dependency
analysis can put a second copy of libmlx at the top of the bundle; code that loads that copy
then fails to find the metallib. A CPU-only MLX (Linux, `mlx[cpu]`) has no metallib: there the
one kept is the copy in mlx/lib, where mlx's extension looks for it (its RUNPATH is
$ORIGIN/lib). No PyInstaller import here, so tests can check it anywhere.
"""

from __future__ import annotations

import os


def one_libmlx_beside_metallib(binaries: list, datas: list) -> list:
    """`binaries` (PyInstaller TOC entries: (dest, src, kind)) keeping only the libmlx beside
    a collected mlx.metallib; raises SystemExit when there is none."""
    entries = list(binaries)
    libs = [e for e in entries if os.path.basename(e[0]).startswith("libmlx")]
    metallib_dirs = {os.path.dirname(e[0]) for e in list(datas) + entries
                     if os.path.basename(e[0]) == "mlx.metallib"}
    beside = [e for e in libs if os.path.dirname(e[0]) in metallib_dirs]
    if not beside:
        raise SystemExit("MLX was not collected with libmlx beside mlx.metallib; found libmlx at "
                         f"{[e[0] for e in libs]}, mlx.metallib in {sorted(metallib_dirs)}")
    keep = beside[0]
    return [e for e in entries if e not in libs or e == keep]


def one_libmlx(binaries: list, datas: list, *, metal: bool) -> list:
    """`binaries` keeping one libmlx: beside mlx.metallib when MLX runs on Metal (macOS), else
    the one in mlx/lib; raises SystemExit when there is no such copy."""
    if metal:
        return one_libmlx_beside_metallib(binaries, datas)
    entries = list(binaries)
    libs = [e for e in entries if os.path.basename(e[0]).startswith("libmlx")]
    in_package = [e for e in libs if os.path.dirname(e[0]).replace("\\", "/") == "mlx/lib"]
    if not in_package:
        raise SystemExit(f"MLX was not collected with libmlx in mlx/lib; found {[e[0] for e in libs]}")
    keep = in_package[0]
    return [e for e in entries if e not in libs or e == keep]
