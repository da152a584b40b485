"""Measuring models: held-out task scoring (`evaluate`, `llada eval`), the lm-evaluation-harness
model (`lm_eval_llada`), LLaDA's Monte Carlo log-likelihood (`likelihood`) and the benchmark
(`bench`, `llada bench`). Each answer goes through the session layer."""
