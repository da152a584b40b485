"""Framework-free pieces shared by both LLaDA backends and the app.

Nothing here imports torch or mlx: the chat template and tokenizer (chat.py, tokens.py), the
step frames a sampler yields (frames.py), the validation and schedule of sampler settings
(settings.py), the model config (config.py), the KV cache (kv_cache.py) and locating a
checkpoint (checkpoint.py). Import the module you need; this package imports nothing, so the
`llada` command starts without numpy or transformers.
"""
