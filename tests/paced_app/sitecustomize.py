"""For tests that run `llada app` in a subprocess and must act mid-answer: with
LLADA_TEST_STEP_DELAY set, every model the session layer loads pauses that many seconds after
each step (tests/pacing.py), and with LLADA_TEST_STEP_MARK the steps taken so far are written to
that file. Put this folder first on PYTHONPATH."""

import os
import sys
from pathlib import Path

_delay = float(os.environ.get("LLADA_TEST_STEP_DELAY") or 0)
if _delay:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import app.session.model as _model
    from pacing import pace

    _load = _model.load_model

    _mark = os.environ.get("LLADA_TEST_STEP_MARK")

    def _paced_load(*args, **kwargs):
        loaded = _load(*args, **kwargs)
        pace(loaded, _delay, Path(_mark) if _mark else None)
        return loaded

    _model.load_model = _paced_load
