"""The session layer: the one Qt-free path from a conversation to the frames of an answer.

Every front end (the window, the `llada` commands, the HTTP server, evaluation) goes through it:
loading a model and hosting it on one thread (`model`, `host`), building the prompt from a
conversation under one context policy (`conversation`), planning one step schedule
(`settings_logic`), running the sampler and turning its frames into text deltas and stats
(`answer`, `stream_decode`, `frame_text`, `stats_text`, `progress_text`), one error-to-sentence
mapping (`errors`), the backend protocol (`backends`) and logging set-up (`logs`).
Nothing here imports Qt.
"""
