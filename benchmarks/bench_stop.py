"""Stop-to-idle in the window: `python benchmarks/bench_stop.py`.

Opens the window offscreen on the bundled demo model (answer 64, 64 steps, exact mode), presses
Stop at a random moment of each answer and measures the time until the window is idle again
(the stopped answer stored, Send back). A big model's step takes seconds; the worker's step
delay stands in for it (0, 0.25 and 1 s per step), so the numbers show stop-to-idle against
the step time: at most one step, as the sampler checks Stop at each step boundary.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETTINGS = {"gen_length": 64, "block_length": 64, "steps": 64, "mode": "exact"}


def main(stops: int = 5) -> None:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from app.models.catalog import bundled_demo_model
    from app.history.store import Store
    from app.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    rng = random.Random(0)
    print(f"{'step delay':>10} {'stops':>6} {'median s':>9} {'max s':>7} {'max / step':>11}")
    for delay in (0.0, 0.25, 1.0):
        with tempfile.TemporaryDirectory() as data:
            store = Store.in_folder(data)
            window = MainWindow(store, model=str(bundled_demo_model()), default_settings=SETTINGS,
                                step_delay=delay)
            wait(app, window.model_loaded)
            latencies = []
            for _ in range(stops):
                window.new_conversation()
                window.settings_panel.set_settings({**window.settings_panel.settings(), **SETTINGS})
                loop = QEventLoop()
                window.answer_stored.connect(loop.quit)
                stopped_at = {}

                def press_stop() -> None:
                    stopped_at["t"] = time.perf_counter()
                    window.stop()

                window.send("What is 47 + 58?")
                QTimer.singleShot(int(rng.uniform(1.5, 4.5) * max(delay, 0.01) * 1000), press_stop)
                loop.exec()
                window.answer_stored.disconnect(loop.quit)
                latencies.append(time.perf_counter() - stopped_at["t"])
            window.shutdown()
            store.close()
            worst = max(latencies)
            print(f"{delay:>10.2f} {stops:>6} {statistics.median(latencies):>9.3f} {worst:>7.3f} "
                  f"{(worst / delay if delay else float('nan')):>11.2f}")


def wait(app, signal) -> None:
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    signal.connect(loop.quit)
    loop.exec()
    signal.disconnect(loop.quit)


if __name__ == "__main__":
    main()
