#!/usr/bin/env bash
# Build resources/LLaDA.icns from resources/icon-1024.png with the macOS tools (sips, iconutil).
# On a Mac only. Regenerate the PNG first if app/resources/icon.svg changed:
#     python resources/render_icon.py resources/icon-1024.png
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="${1:-$HERE/icon-1024.png}"
OUT="${2:-$HERE/LLaDA.icns}"
command -v iconutil >/dev/null || { echo "iconutil not found: run this on macOS" >&2; exit 2; }
SET="$(mktemp -d)/LLaDA.iconset"
mkdir -p "$SET"
for size in 16 32 128 256 512; do
    sips -z "$size" "$size" "$SRC" --out "$SET/icon_${size}x${size}.png" >/dev/null
    double=$((size * 2))
    sips -z "$double" "$double" "$SRC" --out "$SET/icon_${size}x${size}@2x.png" >/dev/null
done
iconutil -c icns "$SET" -o "$OUT"
echo "wrote $OUT"
