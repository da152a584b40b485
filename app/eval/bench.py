"""Sampler benchmark: the same prompts through exact mode and each fast-mode part, in one process.

Prints, per variant: seconds, NFE, answer tokens per NFE, ms per NFE, visible tokens per second
(the answer up to EOS or end of turn), the peak memory of the variant as its backend measures it
(MLX: mx.get_peak_memory, reset before each variant; PyTorch on CUDA: the allocator's peak; on
the CPU: the process's peak resident set, reset before each variant where Linux allows it),
the speed-up over exact as a ratio, and how many answer positions equal exact mode's. With
--repeats N the variants run round-robin N times and the median is reported, so a busy machine
slows every variant alike; the process's CPU seconds are reported beside wall seconds.

`--report FILE` runs a fixed suite instead (REPORT_SUITE: exact and fast at answers 128 and 256
on one chat prompt, on the named or the default model) and writes FILE.md and FILE.json with the
machine, the backend and its versions, for people to send in their numbers.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from app.session.model import LoadedModel

VARIANTS: dict[str, dict[str, Any]] = {
    "exact": {"mode": "exact"},
    "fast (all parts)": {"mode": "fast", "cache": "dual", "threshold": 0.9, "early_stop": True},
    "dual cache": {"mode": "fast", "cache": "dual", "threshold": None, "early_stop": False},
    "prefix cache": {"mode": "fast", "cache": "prefix", "threshold": None, "early_stop": False},
    "threshold 0.9": {"mode": "fast", "cache": "none", "threshold": 0.9, "early_stop": False},
    "early stop": {"mode": "fast", "cache": "none", "threshold": None, "early_stop": True},
}

# LLaDA 2.x's decoders (block diffusion): the first is the reference the others are compared with,
# the model's own official decoder (app.models.defaults.block_diffusion_defaults: 2.0 threshold
# 0.95, 2.1 its editing in Q mode); then the report's faster threshold, and 2.1's two modes.
BLOCK_VARIANTS: dict[str, dict[str, Any]] = {
    "official decoder": {},
    "threshold 0.85": {"threshold": 0.85},
    "Q mode (0.7 / 0.5)": {"threshold": 0.7, "editing_threshold": 0.5},
    "S mode (0.5 / 0.0)": {"threshold": 0.5, "editing_threshold": 0.0},
}

# About 40M parameters, the LM head a tenth of them (the acceptance benchmark of issue 6).
RANDOM_MODEL = {"d_model": 512, "n_layers": 10, "n_heads": 8, "mlp_hidden_size": 1536,
                "min_rows": 8192, "shards": 1}


@dataclass
class Result:
    variant: str
    seconds: float
    cpu_seconds: float
    nfe: int
    tokens_per_nfe: float
    ms_per_nfe: float
    peak_mb: float
    speedup: float
    agreement: float
    accuracy: Optional[float] = None
    visible_tokens: int = 0
    visible_tokens_per_s: float = 0.0
    memory_method: str = ""


class PeakMemory:
    """Peak resident memory growth while the block runs (polls /proc; ru_maxrss elsewhere)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def current() -> int:
        try:
            with open("/proc/self/statm") as statm:
                return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
        try:
            import resource  # Unix only
        except ImportError:
            return 0
        scale = 1 if sys.platform == "darwin" else 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def _poll(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> "PeakMemory":
        self.start = self.current()
        self.peak = self.start
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


class VmPeak:
    """The process's peak resident set since the last reset: Linux keeps it in VmHWM and resets
    it when "5" is written to /proc/self/clear_refs (no other process is touched)."""

    def __init__(self) -> None:
        self.start = 0
        self.peak = 0

    @staticmethod
    def field(name: str) -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    @staticmethod
    def available() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
            return True
        except OSError:
            return False

    def __enter__(self) -> "VmPeak":
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        self.start = self.field("VmRSS")
        return self

    def __exit__(self, *exc) -> None:
        self.peak = self.field("VmHWM")

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


class BackendPeak:
    """Peak memory of what runs inside, measured the way the backend can (MLX's own peak, the
    CUDA allocator's peak: the backend's peak_memory), else the process's peak resident set
    (reset per variant on Linux, otherwise the growth over the start, which an allocator that
    keeps freed memory hides)."""

    def __init__(self, backend: Any, model: Any):
        self.backend, self.model = backend, model
        self._backend_method = backend.peak_memory_method(model)
        if self._backend_method:
            self.kind = "backend"
        else:
            self.kind = "vmhwm" if VmPeak.available() else "rss"
        self.peak_mb = 0.0

    @property
    def method(self) -> str:
        return {"backend": self._backend_method,
                "vmhwm": "peak RSS (VmHWM, reset per variant) minus RSS at start",
                "rss": "peak RSS growth (polled)"}[self.kind]

    def __enter__(self) -> "BackendPeak":
        if self.kind == "backend":
            self._base = self.backend.reset_peak_memory(self.model)
        elif self.kind == "vmhwm":
            self._inner = VmPeak().__enter__()
        else:
            self._inner = PeakMemory().__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.kind == "backend":
            self.peak_mb = ((self.backend.peak_memory(self.model) or 0) - self._base) / 2**20
        else:
            self._inner.__exit__(*exc)
            self.peak_mb = self._inner.growth_mb


def random_prompts(tokenizer: Any, count: int, length: int, seed: int = 0) -> list[list[int]]:
    """Prompts of ordinary (non-special) token ids, so every variant sees the same work."""
    special = set(tokenizer.all_special_ids) | {
        tokenizer.convert_tokens_to_ids(t) for t in tokenizer.get_added_vocab()}
    ordinary = [i for i in range(min(special, default=len(tokenizer))) if i not in special]
    rng = random.Random(seed)
    return [[rng.choice(ordinary) for _ in range(length)] for _ in range(count)]


def demo_task_prompts(backend: Any, tokenizer: Any, per_task: int):
    """Held-out prompts of every demo task, the long-answer ones (counting, 26-62 tokens) among
    them, and a judge of answers to them."""
    from app.eval.evaluate import held_out_items
    from llada_core.chat import answer_text
    from llada_train.demo_tasks import TASKS, is_correct

    items = held_out_items(list(TASKS), per_task)
    prompts = [backend.encode_chat(tokenizer, [{"role": "user", "content": i.question}]) for i in items]

    def judge(answers: list[list[int]]) -> float:
        right = sum(is_correct(answer_text(tokenizer, a), item) for a, item in zip(answers, items))
        return right / len(items)

    return prompts, judge


def visible_length(answer: list[int], model: Any) -> int:
    """Answer tokens a person sees: up to (not including) the first EOS or end of turn."""
    stops = {model.args.eos_token_id, getattr(model.args, "eot_token_id", None)} - {None}
    for position, token in enumerate(answer):
        if token in stops:
            return position
    return len(answer)


def run_variant(loaded: "LoadedModel", prompts: list[list[int]], settings: dict[str, Any]):
    from app.session.answer import run_to_end

    answers, nfe = [], 0
    with BackendPeak(loaded.backend, loaded.model) as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        for prompt in prompts:
            finished = run_to_end(loaded, prompt, settings)
            answers.append(finished.tokens)
            nfe += finished.nfe
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return answers, nfe, seconds, cpu, memory.peak_mb, memory.method


def benchmark(loaded: "LoadedModel", prompts: list[list[int]], sampler: dict[str, Any],
              variants: list[str], repeats: int = 1,
              judge: Optional[Callable[[list[list[int]]], float]] = None,
              table: Optional[dict[str, dict[str, Any]]] = None) -> list[Result]:
    """judge, when given, scores a variant's answers (one per prompt) as a fraction correct.
    `table`: the variants' settings (VARIANTS, or BLOCK_VARIANTS for LLaDA 2.x); its first is
    the reference every variant's speed and agreement are measured against."""
    table = VARIANTS if table is None else table
    first = next(iter(table))
    if first not in variants:
        variants = [first, *variants]
    # One short warm-up so the first variant does not pay for lazy initialisation.
    warm = dict(sampler, gen_length=sampler["block_length"], steps=1, block_length=sampler["block_length"])
    from app.session.answer import run_to_end

    run_to_end(loaded, prompts[0], warm)
    model = loaded.model
    runs: dict[str, list] = {name: [] for name in variants}
    for _ in range(max(1, repeats)):
        for name in variants:
            runs[name].append(run_variant(loaded, prompts, dict(sampler, **table[name])))
    reference = runs[first][0][0]
    exact_seconds = statistics.median(run[2] for run in runs[first])
    results = []
    for name in variants:
        answers, nfe = runs[name][0][0], runs[name][0][1]
        seconds = statistics.median(run[2] for run in runs[name])
        cpu = statistics.median(run[3] for run in runs[name])
        peak = max(run[4] for run in runs[name])
        same = sum(a == b for x, y in zip(answers, reference) for a, b in zip(x, y))
        total = sum(len(x) for x in reference)
        tokens = sampler["gen_length"] * len(prompts)
        visible = sum(visible_length(answer, model) for answer in answers)
        results.append(Result(
            variant=name, seconds=round(seconds, 3), cpu_seconds=round(cpu, 3), nfe=nfe,
            tokens_per_nfe=round(tokens / nfe, 2), ms_per_nfe=round(1000 * seconds / nfe, 2),
            peak_mb=round(peak, 1), speedup=round(exact_seconds / seconds, 2),
            agreement=round(same / total, 3),
            accuracy=None if judge is None else round(judge(answers), 4),
            visible_tokens=visible, visible_tokens_per_s=round(visible / seconds, 2),
            memory_method=runs[name][0][5],
        ))
    return results


def format_table(results: list[Result]) -> str:
    judged = any(r.accuracy is not None for r in results)
    header = (f"{'variant':<18}{'seconds':>9}{'CPU s':>8}{'NFE':>7}{'tok/NFE':>9}{'ms/NFE':>9}"
              f"{'vis tok/s':>10}{'peak MB':>9}{'speed-up':>10}{'= exact':>9}"
              + (f"{'accuracy':>10}" if judged else ""))
    rows = [header, "-" * len(header)]
    for r in results:
        rows.append(f"{r.variant:<18}{r.seconds:>9.2f}{r.cpu_seconds:>8.1f}{r.nfe:>7}{r.tokens_per_nfe:>9.2f}{r.ms_per_nfe:>9.1f}"
                    f"{r.visible_tokens_per_s:>10.2f}{r.peak_mb:>9.1f}{r.speedup:>9.2f}x{r.agreement:>9.1%}"
                    + (f"{r.accuracy:>10.1%}" if judged else ""))
    if results and results[0].memory_method:
        rows.append(f"peak MB: {results[0].memory_method}")
    return "\n".join(rows)


def build_random_model(folder: Path, overrides: Optional[dict[str, Any]] = None) -> Path:
    from llada_train.tiny import TinySpec, make_tiny_checkpoint

    return make_tiny_checkpoint(folder, TinySpec(**dict(RANDOM_MODEL, **(overrides or {}))))


def parameter_count(folder: Path) -> tuple[int, int]:
    """(all parameters, LM head parameters) from config.json (LLaDA 8B's names), else counted
    from the checkpoint's tensors."""
    config = json.loads((folder / "config.json").read_text())
    if "d_model" not in config:
        sizes = _tensor_sizes(folder)
        return sum(sizes.values()), sum(n for name, n in sizes.items() if name.endswith("lm_head.weight"))
    d, hidden, rows = config["d_model"], config["mlp_hidden_size"], config["embedding_size"]
    kv = config["n_kv_heads"] * d // config["n_heads"]
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * hidden + 2 * d
    head = rows * d
    return config["n_layers"] * per_layer + 2 * rows * d + d, head


def variant_table(folder: str, sampler: dict[str, Any], variants: list[str]
                  ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str]]:
    """(variants' settings, sampler, variants to run) for the model in `folder`: LLaDA 2.x runs
    its block decoders (with its own official settings), any other model the exact and fast
    samplers; no variants named: all of them; a variant of the other family is one sentence."""
    from app.models.defaults import block_diffusion_defaults

    own = block_diffusion_defaults(folder)
    table, other = (BLOCK_VARIANTS, VARIANTS) if own else (VARIANTS, BLOCK_VARIANTS)
    wrong = [v for v in variants if v not in table]
    if wrong:
        kind = "LLaDA 2.x" if own else "this model"
        raise ValueError(f"{', '.join(wrong)} cannot run on {kind}; choose from {', '.join(table)}")
    if own:
        sampler = dict(sampler, mode="exact", threshold=own["threshold"])
    return table, sampler, variants or list(table)


def run(model_path: Optional[str], backend_name: Optional[str], dtype: Optional[str],
        prompts: int, prompt_length: int, sampler: dict[str, Any], variants: list[str],
        random_overrides: Optional[dict[str, Any]] = None, as_json: bool = False,
        repeats: int = 1, task_items: int = 0) -> dict[str, Any]:
    """task_items > 0: the prompts are that many held-out demo-task items per task, and each
    variant's answers are scored (the model must be one that can answer them)."""
    from app.session.model import load_model

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(model_path) if model_path else build_random_model(Path(scratch), random_overrides)
        loaded = load_model(str(folder), backend_name, dtype=dtype)
        backend_name, backend, tokenizer = loaded.backend_name, loaded.backend, loaded.tokenizer
        total, head = parameter_count(folder) if (folder / "config.json").is_file() else (0, 0)
        judge = None
        if task_items:
            prompt_ids, judge = demo_task_prompts(backend, tokenizer, task_items)
        else:
            prompt_ids = random_prompts(tokenizer, prompts, prompt_length)
        table, sampler, variants = variant_table(str(folder), sampler, variants)
        results = benchmark(loaded, prompt_ids, sampler, variants, repeats, judge, table)
    report = {
        "backend": backend_name, "model": model_path or "random", "parameters": total,
        "head_parameters": head, "prompts": prompts, "prompt_length": prompt_length,
        "sampler": sampler, "repeats": repeats, "results": [asdict(r) for r in results],
        "prompt_count": len(prompt_ids),
    }
    prompts_text = (f"{len(prompt_ids)} held-out demo-task items" if task_items
                    else f"{prompts} prompt(s) of {prompt_length} tokens")
    if as_json:
        print(json.dumps(report))
    else:
        print(f"backend {backend_name} | model {report['model']} | {total / 1e6:.1f}M parameters, "
              f"head {head / max(total, 1):.0%} | {prompts_text} | "
              f"answer {sampler['gen_length']}, block {sampler['block_length']}, steps {sampler['steps']}"
              f"{f' | median of {repeats} round-robin runs' if repeats > 1 else ''}")
        print(format_table(results))
    return report


# --- `llada bench --report FILE`: the fixed suite people can run and send in -------------------

REPORT_PROMPT = ("Explain in a few sentences why the sky is blue, then give one everyday example "
                 "of the same effect.")
REPORT_ANSWERS = (128, 256)
REPORT_BLOCK = 32
REPORT_VARIANTS = ("exact", "fast (all parts)")


def _command(*argv: str) -> str:
    import subprocess

    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def system_info(backend_name: str, model: Any = None, backend: Any = None) -> dict[str, Any]:
    """The machine and the software that ran the suite; the device and dtype as `backend` (the
    module, see app.session.backends.Backend) describes them."""
    import importlib.metadata as metadata

    from app import __version__

    info: dict[str, Any] = {
        "os": platform.platform(), "machine": platform.machine(),
        "python": platform.python_version(), "llada_desktop": __version__,
        "backend": backend_name, "chip": platform.processor() or platform.machine(),
        "memory_gb": None, "versions": {},
    }
    if sys.platform == "darwin":
        info["chip"] = _command("sysctl", "-n", "machdep.cpu.brand_string") or info["chip"]
        memsize = _command("sysctl", "-n", "hw.memsize")
        info["memory_gb"] = round(int(memsize) / 2**30, 1) if memsize.isdigit() else None
    else:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    info["chip"] = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        try:
            info["memory_gb"] = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
        except (ValueError, OSError, AttributeError):
            pass
    info["cpu_count"] = os.cpu_count()
    for package in ("numpy", "torch", "mlx", "mlx-metal", "transformers"):
        try:
            info["versions"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    if backend is not None:
        info.update(backend.describe(model))
    return info


def report_paths(out: str | Path) -> tuple[Path, Path]:
    """FILE -> (FILE.md, FILE.json); a .md or .json suffix given is replaced."""
    out = Path(out)
    if out.suffix.lower() in (".md", ".json"):
        out = out.with_suffix("")
    return out.with_name(out.name + ".md"), out.with_name(out.name + ".json")


def format_report(report: dict[str, Any]) -> str:
    system = report["system"]
    lines = [
        "# LLaDA Desktop sampler report", "",
        f"- model: `{report['model']}` ({report['parameters'] / 1e6:.1f}M parameters, "
        f"dtype {system.get('dtype', '?')})",
        f"- backend: {system['backend']} on {system.get('device', '?')}; "
        + ", ".join(f"{k} {v}" for k, v in system["versions"].items()),
        f"- machine: {system['chip']}, {system['memory_gb']} GB, {system['cpu_count']} CPUs; "
        f"{system['os']}",
        f"- prompt: {report['prompt_tokens']} tokens (chat template); block {report['block_length']}, "
        "steps = answer length; fast = dual cache, threshold 0.9, early stop",
        f"- peak memory: {report['memory_method']}", "",
        "| answer | variant | seconds | NFE | ms/NFE | tokens/pass | visible tokens | "
        "visible tok/s | peak MB | speed-up | = exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['gen_length']} | {row['variant']} | {row['seconds']:.2f} | {row['nfe']} | "
            f"{row['ms_per_nfe']:.1f} | {row['tokens_per_nfe']:.2f} | {row['visible_tokens']} | "
            f"{row['visible_tokens_per_s']:.2f} | {row['peak_mb']:.1f} | {row['speedup']:.2f}x | "
            f"{row['agreement']:.1%} |")
    lines += ["", "Run with `llada bench --report FILE` "
              "(add `--model`, `--backend`, `--dtype` as for the other commands)."]
    return "\n".join(lines) + "\n"


def run_report(out: str | Path, model_path: Optional[str], backend_name: Optional[str],
               dtype: Optional[str], repeats: int = 1) -> dict[str, Any]:
    """The fixed suite on the named model (else the default one), written as Markdown + JSON."""
    from app.models.defaults import default_model
    from app.session.model import load_model
    from llada_core.chat import encode_prompt

    model_path = model_path or default_model()
    loaded = load_model(str(model_path), backend_name, dtype=dtype)
    backend_name, backend, model, tokenizer = (loaded.backend_name, loaded.backend, loaded.model,
                                               loaded.tokenizer)
    folder = Path(str(model_path))
    total = parameter_count(folder)[0] if (folder / "config.json").is_file() else 0
    prompt = encode_prompt(tokenizer, REPORT_PROMPT)
    rows, method = [], ""
    names = list(REPORT_VARIANTS) if variant_table(str(folder), {}, [])[0] is VARIANTS else []
    for answer in REPORT_ANSWERS:
        sampler = {"gen_length": answer, "block_length": REPORT_BLOCK, "steps": answer}
        table, sampler, variants = variant_table(str(folder), sampler, names)
        for result in benchmark(loaded, [prompt], sampler, variants, repeats, table=table):
            rows.append({"gen_length": answer, **asdict(result)})
            method = result.memory_method
    report = {
        "model": str(model_path), "parameters": total, "prompt": REPORT_PROMPT,
        "prompt_tokens": len(prompt), "block_length": REPORT_BLOCK, "repeats": repeats,
        "memory_method": method, "system": system_info(backend_name, model, backend), "results": rows,
    }
    markdown, data = report_paths(out)
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(format_report(report), encoding="utf-8")
    data.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(format_report(report))
    print(f"wrote {markdown} and {data}")
    return report


# --- `llada bench --random-moe`: a random LLaDA-MoE against dense models of equal size ---------

# Sizes of the comparison: a MoE (experts of width expert_width, top_k of them per token) and two
# dense LLaDAs with the same width, depth and heads, whose MLP is experts·expert_width wide (equal
# total parameters) or top_k·expert_width wide (equal parameters touched per token).
MOE_COMPARISON = {"hidden": 512, "layers": 4, "heads": 8, "experts": 16, "top_k": 2,
                  "expert_width": 512}

# One full-canvas forward pass (an NFE of exact mode) in a fresh process, so that each model's
# peak memory is its own: timed after a warm-up, the median of the repeats.
ONE_FORWARD = r"""
import json, statistics, sys, time
import numpy as np
backend, path, canvas, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def peak_rss():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024

ids = np.random.default_rng(0).integers(0, 200, (1, canvas))
from app.session.backends import get_backend, load_options
backend = get_backend(backend)
model, _ = backend.load(path, **load_options(backend, device="cpu", dtype="float32"))
def forward():
    backend.forward(model, ids)
backend.reset_peak_memory(model)
peak = lambda: backend.peak_memory(model)
forward()
times = []
for _ in range(repeats):
    started = time.perf_counter()
    forward()
    times.append(time.perf_counter() - started)
print(json.dumps({"ms_per_nfe": 1000 * statistics.median(times), "peak_backend": peak(),
                  "peak_rss": peak_rss()}))
"""


def _tensor_sizes(folder: Path) -> dict[str, int]:
    """Element count of every tensor in the folder's safetensors files, from their headers."""
    import struct

    from llada_core.checkpoint import weight_files

    sizes: dict[str, int] = {}
    for path in weight_files(folder):
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= int(dim)
                sizes[name] = count
    return sizes


def layer_parameters(folder: Path) -> tuple[int, int]:
    """(total, active per token) parameters of the transformer layers, embedding and head left
    out, read from the checkpoint: a MoE's experts count k/E of their size as active."""
    import re

    config = json.loads((folder / "config.json").read_text())
    layers = {name: n for name, n in _tensor_sizes(folder).items()
              if re.search(r"\.(layers|blocks)\.\d+\.", name)}
    total = sum(layers.values())
    experts = sum(n for name, n in layers.items() if ".experts." in name)
    if not experts:
        return total, total
    share = config["num_experts_per_tok"] / config["num_experts"]
    return total, total - experts + round(experts * share)


def build_moe_comparison(root: Path, sizes: Optional[dict[str, int]] = None) -> dict[str, Path]:
    """The three random float32 checkpoints of the comparison, by name, in `root`."""
    from llada_train.tiny import TinySpec, make_tiny_checkpoint
    from llada_train.tiny_moe import TinyMoESpec, make_tiny_moe_checkpoint

    s = dict(MOE_COMPARISON, **(sizes or {}))
    d, layers, heads = s["hidden"], s["layers"], s["heads"]
    experts, k, inner = s["experts"], s["top_k"], s["expert_width"]
    if not 0 < k <= experts:
        raise ValueError(f"top-k {k} must be between 1 and the number of experts {experts}")

    def dense(name: str, width: int) -> Path:
        return make_tiny_checkpoint(root / name, TinySpec(
            d_model=d, n_layers=layers, n_heads=heads, mlp_hidden_size=width, shards=1))

    return {
        f"MoE {experts} experts top-{k}": make_tiny_moe_checkpoint(root / "moe", TinyMoESpec(
            hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
            num_experts=experts, num_experts_per_tok=k, expert_intermediate_size=inner,
            shards=1)),
        f"dense, equal total (MLP {experts * inner})": dense("dense_total", experts * inner),
        f"dense, equal active (MLP {k * inner})": dense("dense_active", k * inner),
    }


def measure_forward(backend: str, folder: Path, canvas: int, repeats: int) -> dict[str, Any]:
    """ms per NFE and peak memory of one model in a fresh process (see ONE_FORWARD)."""
    import subprocess

    run_ = subprocess.run([sys.executable, "-c", ONE_FORWARD, backend, str(folder), str(canvas),
                           str(repeats)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    if run_.returncode:
        lines = run_.stderr.strip().splitlines()
        raise RuntimeError(f"{backend} on {folder.name} failed: {lines[-1] if lines else run_.returncode}")
    return json.loads(run_.stdout.strip().splitlines()[-1])


def installed_backends() -> list[str]:
    import importlib.util

    def has(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    return [name for name, module in (("torch", "torch"), ("mlx", "mlx.core")) if has(module)]


def run_moe_comparison(backends: Optional[list[str]] = None, canvas: int = 96, repeats: int = 5,
                       sizes: Optional[dict[str, int]] = None,
                       as_json: bool = False) -> list[dict[str, Any]]:
    """Each (backend, model) of the comparison: ms per NFE over a `canvas`-token sequence and peak
    memory (MLX: its peak allocation; both: the process's peak RSS); prints a table or JSON.
    Ratios are against the dense model of equal total size, measured in the same run."""
    backends = backends or installed_backends()
    if not backends:
        raise RuntimeError("neither torch nor mlx is installed")
    if canvas < 1 or repeats < 1:
        raise ValueError("the canvas and the repeats must be at least 1")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        models = build_moe_comparison(Path(scratch), sizes)
        counts = {name: layer_parameters(folder) for name, folder in models.items()}
        for backend in backends:
            for name, folder in models.items():
                row = measure_forward(backend, folder, canvas, repeats)
                total, active = counts[name]
                row.update(backend=backend, model=name, layer_parameters=total,
                           active_parameters=active)
                results.append(row)
    if as_json:
        print(json.dumps({"canvas": canvas, "repeats": repeats,
                          "sizes": dict(MOE_COMPARISON, **(sizes or {})), "results": results}))
    else:
        print(format_moe_table(results, canvas, repeats, dict(MOE_COMPARISON, **(sizes or {}))))
    return results


def format_moe_table(results: list[dict[str, Any]], canvas: int, repeats: int,
                     sizes: dict[str, int]) -> str:
    lines = [f"canvas {canvas} tokens, hidden {sizes['hidden']}, {sizes['layers']} layers, "
             f"median of {repeats}, float32 on the CPU (layer parameters: embedding and head "
             "left out)",
             f"{'backend':7} {'model':34} {'total':>9} {'active':>9} {'ms/NFE':>8} "
             f"{'vs total':>9} {'MLX peak MB':>12} {'peak RSS MB':>12}"]
    for backend in dict.fromkeys(r["backend"] for r in results):
        rows = [r for r in results if r["backend"] == backend]
        base = next((r["ms_per_nfe"] for r in rows if "equal total" in r["model"]), None)
        for r in rows:
            ratio = f"{r['ms_per_nfe'] / base:.2f}x" if base else "-"
            mlx_peak = f"{r['peak_backend'] / 2**20:.0f}" if r["peak_backend"] else "-"
            lines.append(
                f"{backend:7} {r['model']:34} {r['layer_parameters'] / 1e6:>7.1f} M "
                f"{r['active_parameters'] / 1e6:>7.1f} M {r['ms_per_nfe']:>8.1f} {ratio:>9} "
                f"{mlx_peak:>12} {r['peak_rss'] / 2**20:>12.0f}")
    return "\n".join(lines)
