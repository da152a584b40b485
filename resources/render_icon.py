"""Render the app icon (app/resources/icon.svg) to a square PNG, with the margin macOS icons use.

    python resources/render_icon.py resources/icon-1024.png [--size 1024] [--margin 0.1]

Runs anywhere PySide6 does (offscreen); resources/make_icns.sh uses it on a Mac.
"""

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--margin", type=float, default=0.1,
                        help="transparent border as a fraction of the size (macOS: about 0.1)")
    parser.add_argument("--svg", default=str(ROOT / "app" / "resources" / "icon.svg"))
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841
    renderer = QSvgRenderer(args.svg)
    if not renderer.isValid():
        print(f"cannot read {args.svg}", file=sys.stderr)
        return 2
    image = QImage(args.size, args.size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pad = args.size * args.margin
    renderer.render(painter, QRectF(pad, pad, args.size - 2 * pad, args.size - 2 * pad))
    painter.end()
    if not image.save(args.out):
        print(f"cannot write {args.out}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
