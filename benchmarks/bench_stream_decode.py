"""The server's streamed text, per frame, against the answer's length:
`python benchmarks/bench_stream_decode.py [--model FOLDER] [--lengths 64 256 1024]`.

A stream sends the committed prefix of the canvas as it grows. The old AnswerText decoded the
whole visible answer on every frame (reimplemented here as `whole_decode_update`), so a frame
cost grew with the answer and a stream cost O(length²); the new one (app.session.stream_decode.AnswerText over
app.session.stream_decode) decodes only the tokens a frame commits. Both run here on the same frames:
one answer of each length (the tokenizer's encoding of a long multilingual text), committed one
token per frame left to right as exact mode does with one token per step, with a stop sequence
that never matches (so both search for it on every frame). Prints the mean and the last frame's
decode time, and checks that both send the same deltas.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEXT = ("The masked diffusion model fills its canvas over many steps; 東京とパリ、über café "
        "naïve — ½ + ¼ ≠ 1 🎉. Count: " + " ".join(str(n) for n in range(2000)))
STOP = ["</never>"]


class WholeDecodeAnswerText:
    """The old AnswerText.update: every frame decodes the whole visible answer and searches it
    all for the stop sequences."""

    def __init__(self, tokenizer: Any, mask_id: int, max_tokens: int, stop: Sequence[str]):
        self.tokenizer, self.mask_id, self.max_tokens, self.stop = tokenizer, mask_id, max_tokens, list(stop)
        self.text, self.complete = "", False

    def update(self, tokens: Sequence[int], final: bool) -> str:
        from llada_core.chat import known_ids, visible_answer_ids

        ids = [int(t) for t in tokens]
        settled = ids if final else ids[:ids.index(self.mask_id)] if self.mask_id in ids else ids
        visible = visible_answer_ids(self.tokenizer, settled)[:self.max_tokens]
        text = self.tokenizer.decode(known_ids(self.tokenizer, visible), skip_special_tokens=True)
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if hits:
            text = text[:min(hits)]
        elif not final:
            text = text.rstrip("\ufffd")
            for stop in self.stop:  # hold back an end that may begin a stop sequence
                for size in range(min(len(stop) - 1, len(text)), 0, -1):
                    if text.endswith(stop[:size]):
                        text = text[:-size]
                        break
        delta, self.text = text[len(self.text):], text
        return delta


def run(answer_type: type, tokenizer: Any, mask: int, answer: list[int]) -> tuple[list[float], list[str]]:
    """Seconds per frame and the deltas, committing one token per frame."""
    streamed = answer_type(tokenizer, mask, len(answer) + 1, STOP)
    canvas = [mask] * len(answer)
    times, deltas = [], []
    for position, token in enumerate(answer):
        canvas[position] = token
        frame = list(canvas)
        started = time.perf_counter()
        deltas.append(streamed.update(frame, False))
        times.append(time.perf_counter() - started)
    return times, deltas


def main(argv: Optional[list[str]] = None) -> None:
    from app.session.stream_decode import AnswerText
    from llada_core.chat import load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "app" / "resources" / "llada-demo"),
                        help="a folder with the tokenizer (default: the bundled demo model)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    tokenizer = load_tokenizer(args.model)
    mask = tokenizer.convert_tokens_to_ids("<|mdm_mask|>")
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    print(f"tokenizer: {args.model} ({len(tokenizer)} tokens); one token committed per frame\n")
    print("| answer tokens | whole decode: mean ms/frame | last frame | incremental: mean ms/frame "
          "| last frame | whole stream, old / new |")
    print("|---:|---:|---:|---:|---:|---:|")
    for length in args.lengths:
        if length > len(ids):
            raise SystemExit(f"the text has {len(ids)} tokens, fewer than {length}")
        answer = ids[:length]
        best: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            old_times, old_deltas = run(WholeDecodeAnswerText, tokenizer, mask, answer)
            new_times, new_deltas = run(AnswerText, tokenizer, mask, answer)
            if old_deltas != new_deltas:
                raise SystemExit(f"the two methods sent different deltas at length {length}")
            for name, times in (("old", old_times), ("new", new_times)):
                if name not in best or sum(times) < sum(best[name]):
                    best[name] = times
        old, new = best["old"], best["new"]
        print(f"| {length} | {1000 * statistics.mean(old):.3f} | {1000 * old[-1]:.3f} "
              f"| {1000 * statistics.mean(new):.3f} | {1000 * new[-1]:.3f} "
              f"| {sum(old) / sum(new):.1f}× |")


if __name__ == "__main__":
    main()
