"""No Qt call may drop a reference to None (issue 21: PySide6 6.12.0 on CPython 3.11 did).

PySide6-Essentials 6.12.0 on CPython < 3.12 released one reference to None on every void Qt call
(setPen, setBrush, drawRoundedRect, setRenderHint, setObjectName ...). The canvas paints dozens
of times a second, so a long answer drove None's count to zero and CPython aborted with "Fatal
Python error: none_dealloc". From CPython 3.12 None is immortal and the count no longer moves.
The first test fails on such a pairing; the second keeps pyproject.toml and constraints.txt from
ever allowing one.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 300
# Allocations inside Qt and Python may take or give back a few references; a broken pairing
# loses at least one per void call, that is thousands here.
TOLERANCE = 50


def void_qt_calls(image, widget) -> None:
    """What the canvas does when it paints, and a few other calls that return nothing."""
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QColor, QPainter, QPen

    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(QColor("red")))
    painter.setBrush(QColor("blue"))
    rect = QRectF(1, 1, 10, 10)
    rect.setWidth(12)
    painter.drawRoundedRect(rect, 2, 2)
    painter.end()
    widget.setObjectName("canvas")
    widget.setToolTip("")


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="None is immortal from CPython 3.12 "
                    "(PEP 683): its reference count never moves, so there is nothing to measure")
def test_painting_keeps_every_reference_to_none(qtbot):
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QWidget

    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    widget = QWidget()
    qtbot.addWidget(widget)
    for _ in range(20):  # warm up: first calls build caches that may hold None
        void_qt_calls(image, widget)
    before = sys.getrefcount(None)
    for _ in range(ROUNDS):
        void_qt_calls(image, widget)
    lost = before - sys.getrefcount(None)
    assert lost <= TOLERANCE, (
        f"{lost} references to None were lost over {ROUNDS} rounds of void Qt calls: this "
        f"PySide6 ({_pyside_version()}) on Python {sys.version.split()[0]} drops one per call "
        f"and the app will abort with 'Fatal Python error: none_dealloc'; install the version "
        f"constraints.txt pins")


def test_canvas_painting_keeps_every_reference_to_none(qtbot):
    """The window's own canvas, painted over and over: None's count does not fall."""
    if sys.version_info >= (3, 12):
        pytest.skip("None is immortal from CPython 3.12 (PEP 683): nothing to measure")
    from app.ui.canvas import DenoiseCanvas

    canvas = DenoiseCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(480, 240)
    canvas.show()
    for _ in range(5):
        canvas.repaint()
    before = sys.getrefcount(None)
    for _ in range(ROUNDS):
        canvas.repaint()
    lost = before - sys.getrefcount(None)
    assert lost <= TOLERANCE, f"painting the canvas {ROUNDS} times lost {lost} references to None"


def _pyside_version() -> str:
    import PySide6

    return PySide6.__version__


# --- the declared versions never allow the broken pairing ------------------------------------
def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _requirements_of(name: str) -> list[str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [r for r in project["dependencies"]
            if re.match(rf"{re.escape(name)}\s*[<>=!~;]", r, re.IGNORECASE)]


def _allows(requirements: list[str], python: str, qt: str, *, required: bool = True) -> bool:
    """Whether no requirement that applies on `python` keeps `qt` out (and, if `required`, some
    requirement applies: the package is a dependency there)."""
    from packaging.markers import Marker
    from packaging.requirements import Requirement

    applying = []
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker or Marker("python_version >= '0'")
        if marker.evaluate({"python_version": python, "python_full_version": python + ".0"}):
            applying.append(requirement)
    if not applying:
        return not required
    return all(r.specifier.contains(qt, prereleases=True) for r in applying)


@pytest.mark.parametrize("name", ["PySide6-Essentials", "shiboken6"])
def test_pyproject_never_pairs_python_before_3_12_with_pyside6_6_12(name):
    """shiboken6 comes with PySide6 at the same version; a bound on it is optional but, if there
    is one, it must not let 6.12 in either."""
    requirements = _requirements_of(name)
    required = name == "PySide6-Essentials"
    if not requirements and not required:
        pytest.skip("pyproject.toml leaves shiboken6 to PySide6-Essentials")
    for python in ("3.10", "3.11"):
        for qt in ("6.12.0", "6.12.1", "6.13.0", "7.0.0"):
            assert not _allows(requirements, python, qt), f"{name} {qt} on Python {python}"
        assert _allows(requirements, python, "6.11.3")
    for python in ("3.12", "3.13"):
        for qt in ("6.11.3", "6.12.0", "6.13.0"):
            assert _allows(requirements, python, qt, required=required), f"{name} {qt} on {python}"


def test_constraints_pin_a_good_qt_for_every_python():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin (name==version)"
            pins[name.strip().lower().replace("_", "-")] = version.split(";")[0].strip()
    qt = pins["pyside6-essentials"]
    assert pins["shiboken6"] == qt, "shiboken6 must be pinned to PySide6's version"
    # CI (Python 3.11) and every Python the project supports below 3.12 install this pin.
    assert _version(qt) < (6, 12), f"constraints.txt pins PySide6 {qt}, which drops None on 3.11"
    assert _allows(_requirements_of("PySide6-Essentials"), "3.11", qt)


def test_ci_installs_with_the_constraints_and_the_readme_shows_the_same_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines()
                if line.startswith(("python -m pip", "bash tests/"))]
    assert commands and "-c constraints.txt" in commands[0]
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("these two commands are exactly what CI runs", 1)[1]
    block = shown.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block == commands, "the README's test commands differ from .ci/run's"
    assert "-c constraints.txt" in (ROOT / "tests" / "mlx_only.sh").read_text()
