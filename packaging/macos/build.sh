#!/usr/bin/env bash
# Build "LLaDA Desktop.app" and a .dmg on an Apple Silicon Mac.
#
#   python -m pip install -e ".[mlx,packaging]"      # once (Python 3.12+ from python.org or pyenv);
#                                                     # torch is not needed: the app bundles MLX only
#   packaging/macos/build.sh                          # -> dist/LLaDA Desktop.app, dist/LLaDA-Desktop-<v>.dmg
#
# Optional, for distribution outside your own Mac:
#   CODESIGN_IDENTITY="Developer ID Application: Name (TEAMID)"  sign the app (hardened runtime)
#   NOTARY_PROFILE=profile-name   notarize the dmg with `xcrun notarytool` (a keychain profile made
#                                 with `xcrun notarytool store-credentials`) and staple the ticket
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
[[ "$(uname -s)" == "Darwin" ]] || { echo "build.sh: run this on macOS" >&2; exit 2; }
[[ "$(uname -m)" == "arm64" ]] || echo "build.sh: warning: not Apple Silicon; MLX needs arm64" >&2
# Python 3.12+: None is immortal there, so a PySide6 that drops references to it cannot abort
# the app (PySide6 6.12.0 on 3.11 did); the spec checks it again (packaging/common.py)
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "build.sh: the macOS bundle needs Python 3.12 or later, not " + sys.version.split()[0])'
"$PYTHON" -c 'import mlx.core' || { echo "build.sh: $PYTHON has no mlx (pip install -e \".[mlx,packaging]\")" >&2; exit 2; }
VERSION="$("$PYTHON" -c 'import re,sys;print(re.search(r"^version\s*=\s*\"([^\"]+)\"",open("pyproject.toml").read(),re.M).group(1))')"
APP="dist/LLaDA Desktop.app"
DMG="dist/LLaDA-Desktop-$VERSION.dmg"

# 1. the icon: resources/icon-1024.png -> resources/LLaDA.icns (sips + iconutil)
resources/make_icns.sh resources/icon-1024.png resources/LLaDA.icns

# 2. the app bundle (onedir + BUNDLE)
"$PYTHON" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller-macos \
    "packaging/macos/LLaDA Desktop.spec"

# 3. sanity checks: Info.plist keys; MLX, llada_mlx and the demo model in, torch and
#    llada_torch out, libmlx beside mlx.metallib (packaging/check_bundle.py, as on Linux);
#    the executable starts
/usr/libexec/PlistBuddy -c "Print :CFBundleIdentifier" "$APP/Contents/Info.plist"
/usr/libexec/PlistBuddy -c "Print :CFBundleShortVersionString" "$APP/Contents/Info.plist"
find "$APP" -name mlx.metallib -print
find "$APP" -name 'libmlx*.dylib' -print
"$PYTHON" packaging/check_bundle.py "$APP" "$APP/Contents/MacOS/LLaDA Desktop" --metal
"$APP/Contents/MacOS/LLaDA Desktop" --version

# 4. optional signing (the spec signs the binaries when CODESIGN_IDENTITY is set; sign the bundle)
if [[ -n "${CODESIGN_IDENTITY:-}" ]]; then
    codesign --force --deep --options runtime --timestamp \
        --entitlements packaging/macos/entitlements.plist --sign "$CODESIGN_IDENTITY" "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
fi

# 5. the disk image: the app and a link to /Applications, compressed
STAGE="$(mktemp -d)"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "LLaDA Desktop" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
rm -rf "$STAGE"

# 6. optional notarization
if [[ -n "${NOTARY_PROFILE:-}" ]]; then
    [[ -n "${CODESIGN_IDENTITY:-}" ]] && codesign --sign "$CODESIGN_IDENTITY" --timestamp "$DMG"
    xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
fi
du -sh "$APP" "$DMG"
