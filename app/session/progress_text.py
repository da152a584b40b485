"""How far an answer is and how long it has left, in words, from the passes done and the pass
rate so far (no Qt: the window's status line and `llada chat`'s live line both use it)."""

from __future__ import annotations

# Below this, an answer is short: a time left would only flicker.
MIN_SECONDS_FOR_ESTIMATE = 1.0


def passes_text(done: int, total: int) -> str:
    return f"pass {done}/{total}"


def seconds_text(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s"


def time_left(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far; None before there is a rate worth quoting."""
    if done < 1 or elapsed < MIN_SECONDS_FOR_ESTIMATE or done >= total:
        return None
    return (total - done) * elapsed / done


def progress_line(done: int, total: int, elapsed: float) -> str:
    """e.g. 'pass 12/64 (19 %) · about 8 s left'. `total` is the step budget: fast mode may
    finish sooner, never later."""
    total = max(total, done, 1)
    text = f"{passes_text(done, total)} ({100 * done // total} %)"
    left = time_left(done, total, elapsed)
    if left is not None:
        text += f" · about {seconds_text(left)} left"
    return text
