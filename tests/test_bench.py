"""The sampler benchmark measures what it says, on the tiny model."""

import json

import pytest

pytest.importorskip("torch")

import llada_torch  # noqa: E402
from app.eval.bench import VARIANTS, benchmark, format_table, parameter_count, random_prompts
from app.session.model import LoadedModel  # noqa: E402
from test_cli import llada


def loaded(tiny_torch) -> LoadedModel:
    model, tokenizer = tiny_torch
    return LoadedModel(backend=llada_torch, model=model, tokenizer=tokenizer, backend_name="torch",
                       path="tiny")


def test_benchmark_reports_every_variant(tiny_torch):
    model, tokenizer = tiny_torch
    prompts = random_prompts(tokenizer, 2, 8)
    special = set(tokenizer.all_special_ids)
    assert all(len(p) == 8 and not special & set(p) for p in prompts)
    sampler = {"gen_length": 32, "block_length": 8, "steps": 32}
    results = benchmark(loaded(tiny_torch), prompts, sampler, list(VARIANTS))
    by_name = {r.variant: r for r in results}
    assert list(by_name) == list(VARIANTS)
    exact = by_name["exact"]
    assert exact.nfe == 64 and exact.tokens_per_nfe == 1.0 and exact.speedup == 1.0 and exact.agreement == 1.0
    assert by_name["dual cache"].nfe == 64  # the same steps, cheaper passes
    assert by_name["early stop"].nfe <= 64
    assert all(r.seconds > 0 and r.ms_per_nfe > 0 for r in results)
    table = format_table(results)
    assert "dual cache" in table and "speed-up" in table


def test_parameter_count_matches_the_model(tiny_checkpoint, tiny_torch):
    total, head = parameter_count(tiny_checkpoint)
    model, _ = tiny_torch
    assert total == sum(p.numel() for p in model.parameters())
    assert head == model.model.transformer["ff_out"].weight.numel()


def test_bench_command_json(tiny_checkpoint):
    result = llada("bench", "--model", str(tiny_checkpoint), "--gen-length", "16", "--block-length", "8",
                   "--prompt-length", "4", "--variants", "exact,dual cache", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [r["variant"] for r in report["results"]] == ["exact", "dual cache"]
    assert report["results"][0]["nfe"] == 16


def test_a_judge_scores_each_variant(tiny_torch):
    model, tokenizer = tiny_torch
    prompts = random_prompts(tokenizer, 2, 6)
    sampler = {"gen_length": 16, "block_length": 8, "steps": 16}
    seen = []

    def judge(answers):
        seen.append(answers)
        return 0.5

    results = benchmark(loaded(tiny_torch), prompts, sampler, ["exact", "dual cache"], judge=judge)
    assert [r.accuracy for r in results] == [0.5, 0.5]
    assert len(seen) == 2 and all(len(answers) == 2 and len(answers[0]) == 16 for answers in seen)
    assert "accuracy" in format_table(results)


def test_bench_on_the_demo_tasks(tiny_checkpoint):
    result = llada("bench", "--model", str(tiny_checkpoint), "--task", "demo", "--task-items", "1",
                   "--gen-length", "16", "--block-length", "16", "--variants", "exact", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    accuracy = report["results"][0]["accuracy"]
    assert 0.0 <= accuracy <= 1.0  # a random model answers (almost) nothing right


def test_report_writes_markdown_and_json(tiny_checkpoint, tmp_path, monkeypatch):
    import app.eval.bench as bench

    monkeypatch.setattr(bench, "REPORT_ANSWERS", (16, 32))
    monkeypatch.setattr(bench, "REPORT_BLOCK", 8)
    report = bench.run_report(tmp_path / "mine.md", str(tiny_checkpoint), "torch", None)
    markdown, data = tmp_path / "mine.md", tmp_path / "mine.json"
    assert markdown.is_file() and data.is_file()
    saved = json.loads(data.read_text())
    assert saved == json.loads(json.dumps(report))
    rows = [(r["gen_length"], r["variant"]) for r in saved["results"]]
    assert rows == [(16, "exact"), (16, "fast (all parts)"), (32, "exact"), (32, "fast (all parts)")]
    for row in saved["results"]:
        assert row["ms_per_nfe"] > 0 and row["tokens_per_nfe"] > 0 and row["peak_mb"] >= 0
        assert 0 <= row["visible_tokens"] <= row["gen_length"]
    exact = saved["results"][0]
    assert exact["nfe"] == 16 and exact["tokens_per_nfe"] == 1.0
    system = saved["system"]
    assert system["backend"] == "torch" and "torch" in system["versions"] and system["chip"]
    assert system["dtype"] == "float32"
    assert "| 32 | fast (all parts) |" in markdown.read_text()


def test_peak_memory_is_measured_per_variant(tiny_torch):
    from app.eval.bench import BackendPeak

    model, _ = tiny_torch
    with BackendPeak(llada_torch, model) as first:
        big = bytearray(64 * 2**20)
        big[::4096] = b"x" * len(big[::4096])  # touch every page
        del big
    with BackendPeak(llada_torch, model) as second:
        pass
    assert first.peak_mb >= 60
    if first.kind == "vmhwm":  # reset per variant: the second does not inherit the first's peak
        assert second.peak_mb < 30


def test_bench_runs_llada2_decoders(tmp_path):
    """`llada bench` on a LLaDA 2.x checkpoint runs its block decoders (the official one first,
    the reference of speed-up and agreement) and counts its parameters from the tensors; a
    variant of LLaDA 8B's samplers is one sentence."""
    from llada_train.tiny_llada2 import TinyLLaDA2Spec, make_tiny_llada2_checkpoint

    folder = make_tiny_llada2_checkpoint(tmp_path / "llada21", TinyLLaDA2Spec(version="2.1"))
    result = llada("bench", "--model", str(folder), "--gen-length", "16", "--block-length", "8",
                   "--prompt-length", "4", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {r["variant"]: r for r in report["results"]}
    assert list(rows)[0] == "official decoder" and "S mode (0.5 / 0.0)" in rows
    assert rows["official decoder"]["agreement"] == 1.0 and report["parameters"] > 0
    assert report["sampler"]["threshold"] == 0.7  # 2.1's own (Q mode)
    wrong = llada("bench", "--model", str(folder), "--variants", "dual cache")
    assert wrong.returncode != 0 and "cannot run on LLaDA 2.x" in wrong.stderr
    assert wrong.stderr.strip().count("\n") == 0
