"""An OpenAI-compatible HTTP server for one LLaDA model (`llada serve`).

Qt-free and independent of the window: it owns its model, touches no conversation store and
shares nothing with a running app. One long-lived worker thread loads the model and runs every
answer (MLX streams are per thread); requests wait their turn in its queue. The HTTP side is
Starlette on uvicorn, imported only when a server is built.

Endpoints: GET /v1/models, POST /v1/chat/completions and POST /v1/completions (raw text, for
Base models), streaming (server-sent events) or not. Standard fields map onto the sampler
(`max_tokens` is the answer length, `temperature`, `seed`, `stop`); extension fields choose
`steps`, `block_length`, `mode`, `threshold`, `cfg_scale` and `remasking`, and
`"llada_frames": true` adds each denoising step as an extra `llada.frame` event to a stream.
A stream sends text as it becomes final: the settled prefix (the longest run of committed
positions from the start of the answer) only grows, so its text is never taken back.
The browser page at `/` and its endpoints (/v1/llada/info, /v1/llada/infill) are in app/server/web.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import ipaddress
import json
import logging
import math
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from app.session.conversation import build_prompt, dropped_notice
from app.session.errors import client_error_message
from app.session.host import HostBusy, Job, ModelHost
from app.session.settings_logic import plan_schedule
from app.session.stats_text import json_stats
from app.session.stream_decode import AnswerText
from llada_core.chat import encode_raw
from llada_core.settings import ContextTooLong, SamplerSettings, check_fits_context

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_STOP_SEQUENCES = 4
RETRY_AFTER_S = 5
DISCONNECT_POLL_S = 0.2  # how often a waiting request checks that its client is still there
LARGEST_WHOLE = 2**63 - 1  # whole-number fields beyond this are refused before any arithmetic

log = logging.getLogger(__name__)

# Fields honoured as the OpenAI API defines them, the server's extensions, and metadata that
# changes nothing about the answer.
HONOURED_FIELDS = frozenset({
    "model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature", "seed",
    "stop", "stream", "stream_options", "n", "echo", "user", "metadata",
    "steps", "block_length", "mode", "threshold", "cfg_scale", "remasking", "llada_frames",
    "editing_threshold",
})
# Standard fields this server does not implement: accepted only at the value that means "off",
# refused with a 400 naming them otherwise, so no request is silently answered differently.
NEUTRAL_ONLY: dict[str, tuple[tuple[Any, ...], str]] = {
    "top_p": ((None, 1), "this server samples from the whole distribution (leave top_p at 1)"),
    "frequency_penalty": ((None, 0), "this server applies no penalties"),
    "presence_penalty": ((None, 0), "this server applies no penalties"),
    "logit_bias": ((None, {}), "this server applies no logit bias"),
    "logprobs": ((None, False), "this server does not return log probabilities"),
    "top_logprobs": ((None, 0), "this server does not return log probabilities"),
    "tools": ((None, []), "this server's models do not call tools"),
    "tool_choice": ((None, "none"), "this server's models do not call tools"),
    "functions": ((None, []), "this server's models do not call functions"),
    "function_call": ((None, "none"), "this server's models do not call functions"),
    "parallel_tool_calls": ((None, False, True), "it must be true or false"),
    "response_format": ((None, {"type": "text"}), "this server writes plain text only"),
    "best_of": ((None, 1), "this server writes one answer per request"),
    "suffix": ((None, ""), "use `llada infill` to fill text between a prefix and a suffix"),
    "store": ((None, False), "this server stores nothing"),
    "service_tier": ((None, "auto", "default"), "this server has one tier"),
}
ECHO_REFUSED = ("'echo' is not supported: to score how likely a text is, use `llada eval "
                "--lm-eval` or the lm-eval model `llada` (app/eval/lm_eval_llada.py)")


class RequestError(Exception):
    """A request the server refuses: HTTP status and an OpenAI-style error body."""

    def __init__(self, status: int, message: str, *, code: Optional[str] = None,
                 param: Optional[str] = None, kind: str = "invalid_request_error",
                 headers: Optional[dict[str, str]] = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.kind = status, message, code, param, kind
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, kind=self.kind, code=self.code, param=self.param)


def error_body(message: str, *, kind: str = "invalid_request_error", code: Optional[str] = None,
               param: Optional[str] = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def served_model_id(model: str) -> str:
    """The id /v1/models lists: a local folder's name, else the repo id as given."""
    path = Path(model)
    return path.resolve().name if path.is_dir() else model


# --- Requests: JSON fields -> prompt ids and sampler settings ---------------------------------

@dataclass
class Generation:
    """One validated request, ready for the worker."""

    kind: str  # "chat", "text" or "infill"
    prompt_ids: list[int]
    settings: SamplerSettings
    max_tokens: int
    stop: list[str]
    stream: bool
    include_usage: bool
    frames: bool
    constraints: dict[int, list[int]] = field(default_factory=dict)
    images: list = field(default_factory=list)  # LLaDA-V: llada_core.vision.ImageSpan
    dropped: int = 0  # the oldest messages left out to fit the context (app.session.conversation)


def _number(body: dict[str, Any], name: str, *, whole: bool = False) -> Any:
    value = body.get(name)
    if value is None:
        return None
    kind = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RequestError(400, f"'{name}' must be {kind}, not {_shown(value)}", param=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise RequestError(400, f"'{name}' must be a finite number", param=name)
    if whole and not (isinstance(value, int) or value.is_integer()):
        raise RequestError(400, f"'{name}' must be {kind}, not {_shown(value)}", param=name)
    if whole and abs(value) > LARGEST_WHOLE:
        raise RequestError(400, f"'{name}' is too large (at most {LARGEST_WHOLE})", param=name)
    if not whole and isinstance(value, int) and abs(value) > 1e300:
        raise RequestError(400, f"'{name}' is too large", param=name)
    return int(value) if whole else value


def _shown(value: Any) -> str:
    """A field's value for an error message, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_fields(body: dict[str, Any]) -> None:
    """Refuse fields this server would otherwise ignore, naming them."""
    for name, value in body.items():
        if name in HONOURED_FIELDS:
            continue
        if name in NEUTRAL_ONLY:
            allowed, why = NEUTRAL_ONLY[name]
            if any(_same(value, ok) for ok in allowed):
                continue
            raise RequestError(400, f"'{name}' is not supported: {why}", param=name,
                               code="unsupported_parameter")
        raise RequestError(400, f"'{_shown(name)[1:-1]}' is not a field this server knows",
                           param=name, code="unknown_parameter")


def _same(value: Any, neutral: Any) -> bool:
    """Whether a field's value is the neutral one (1 and 1.0 alike; true is not 1)."""
    if isinstance(neutral, bool) or neutral is None:
        return value is neutral
    if isinstance(neutral, (int, float)):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == neutral
    return type(value) is type(neutral) and value == neutral


def _check_text(body: dict[str, Any]) -> None:
    """Every string must be text: JSON may spell a lone UTF-16 surrogate ("\\ud800"), which no
    tokenizer can encode."""
    for top, value in body.items():
        pending = [top, value]
        while pending:
            item = pending.pop()
            if isinstance(item, str):
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise RequestError(400, f"'{_shown(top)[1:-1]}' holds an unpaired UTF-16 "
                                            "surrogate, which is not text", param=top) from None
            elif isinstance(item, dict):
                pending.extend(item.keys())
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)


def _stop_sequences(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise RequestError(400, "'stop' must be a string or a list of strings", param="stop")
    if len(stop) > MAX_STOP_SEQUENCES:
        raise RequestError(400, f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences", param="stop")
    return [s for s in stop if s]


def _messages(body: dict[str, Any], pictures: Optional[list] = None) -> list[dict[str, str]]:
    """The messages as role and text; the pictures of image_url parts (data: URLs) go to
    `pictures` as (message number, bytes)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(400, "'messages' must be a non-empty list", param="messages")
    out = []
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            raise RequestError(400, f"message {number} must be an object", param="messages")
        role, content = message.get("role"), message.get("content")
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise RequestError(400, f"message {number} has role {json.dumps(role)}; this server "
                                    "takes system, user and assistant messages", param="messages")
        if isinstance(content, list):  # content parts: text, and pictures as data: URLs
            texts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image_url" and pictures is not None:
                    pictures.append((number, _data_url_bytes(part.get("image_url"), number)))
                    continue
                if not isinstance(part, dict) or part.get("type") != "text" \
                        or not isinstance(part.get("text"), str):
                    raise RequestError(400, f"message {number}: only text and image_url content "
                                            "parts are supported", param="messages")
                texts.append(part["text"])
            content = "".join(texts)
        if content is None and role == "assistant":
            content = ""
        if not isinstance(content, str):
            raise RequestError(400, f"message {number} content must be text", param="messages")
        out.append({"role": role, "content": content})
    return out


def _data_url_bytes(image_url: Any, number: int) -> bytes:
    """The bytes of a `data:image/...;base64,...` URL; the server fetches nothing remote."""
    import base64
    import binascii

    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str) or not url.startswith("data:"):
        raise RequestError(400, f"message {number}: a picture must be sent as a data: URL "
                                "(this server fetches nothing from the network)", param="messages")
    header, comma, data = url.partition(",")
    if not comma or ";base64" not in header:
        raise RequestError(400, f"message {number}: the picture's data: URL is not base64",
                           param="messages")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, f"message {number}: the picture's base64 data is damaged",
                           param="messages") from None


def _text_prompt(tokenizer: Any, body: dict[str, Any]) -> list[int]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return encode_raw(tokenizer, prompt)
    if isinstance(prompt, list) and prompt and all(
            isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return list(prompt)  # token ids, used as they are (checked against the model below)
    raise RequestError(400, "'prompt' must be one string or one list of token ids", param="prompt")


def apply_sampler_fields(body: dict[str, Any], sampler: dict[str, Any]) -> SamplerSettings:
    """The request's temperature, cfg_scale, seed, mode, remasking and threshold over `sampler`
    (which holds the lengths already), checked as one SamplerSettings: a 400 names what is wrong."""
    for name in ("temperature", "cfg_scale"):
        value = _number(body, name)
        if value is not None:
            sampler[name] = value
    seed = _number(body, "seed", whole=True)
    if seed is not None:
        sampler["seed"] = seed
    for name in ("mode", "remasking"):
        if name in body:
            if not isinstance(body[name], str):
                raise RequestError(400, f"'{name}' must be a string", param=name)
            sampler[name] = body[name]
    if "threshold" in body:  # null keeps the fixed schedule
        sampler["threshold"] = _number(body, "threshold")
    if "editing_threshold" in body:  # LLaDA 2.x: null keeps the model's own
        sampler["editing_threshold"] = _number(body, "editing_threshold")
    try:
        return SamplerSettings(**sampler)
    except (TypeError, ValueError) as error:
        raise RequestError(400, str(error), code="invalid_settings") from error


def parse_generation(body: Any, kind: str, *, tokenizer: Any, defaults: dict[str, Any],
                     model_ids: Sequence[str], max_sequence_length: int, vocab_rows: int,
                     vision: Any = None, placeholder: Optional[int] = None) -> Generation:
    """Validate a request body into a Generation; RequestError (4xx) names what is wrong."""
    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    _check_text(body)
    _check_fields(body)
    model = body.get("model")
    if model is not None and model not in model_ids:
        raise RequestError(404, f"the model {json.dumps(model)} does not exist; this server has "
                                f"{json.dumps(model_ids[0])}", code="model_not_found", param="model")
    n = body.get("n", 1)
    if n is not None and (n != 1 or isinstance(n, bool)):
        raise RequestError(400, "'n' must be 1: this server writes one answer per request", param="n")
    if body.get("echo") is not None and body.get("echo") is not False:
        raise RequestError(400, ECHO_REFUSED, param="echo")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError(400, "'stream_options' must be an object", param="stream_options")
    frames = body.get("llada_frames", False)
    if not isinstance(frames, bool):
        raise RequestError(400, "'llada_frames' must be true or false", param="llada_frames")

    max_tokens = _number(body, "max_tokens", whole=True)
    if max_tokens is None and kind == "chat":
        max_tokens = _number(body, "max_completion_tokens", whole=True)
    if max_tokens is not None and max_tokens < 1:
        raise RequestError(400, f"'max_tokens' must be at least 1, not {max_tokens}", param="max_tokens")
    if max_tokens is not None and max_tokens > max_sequence_length:
        raise RequestError(400, f"'max_tokens' is {max_tokens}; this model's context is "
                                f"{max_sequence_length} tokens", code="context_length_exceeded",
                           param="max_tokens")
    block_length = _number(body, "block_length", whole=True)
    steps = _number(body, "steps", whole=True)
    sampler = dict(defaults)
    try:
        sampler.update(plan_schedule(max_tokens, defaults, block_length, steps))
    except ValueError as error:
        raise RequestError(400, str(error), code="invalid_settings") from error
    settings = apply_sampler_fields(body, sampler)

    dropped = 0
    try:
        pictures: list = []
        turns = _messages(body, pictures) if kind == "chat" else []
        if pictures:
            images, prompt_ids = _picture_prompt(tokenizer, turns, pictures, vision, placeholder)
            check_fits_context(len(prompt_ids), settings.gen_length, max_sequence_length)
        elif kind == "chat":
            built = build_prompt(tokenizer, {"turns": turns}, settings.gen_length,
                                 max_sequence_length)
            prompt_ids, dropped = built.ids, built.dropped
        else:
            prompt_ids = _text_prompt(tokenizer, body)
            check_fits_context(len(prompt_ids), settings.gen_length, max_sequence_length)
    except ContextTooLong as error:
        raise RequestError(400, str(error), code="context_length_exceeded",
                           param="messages" if kind == "chat" else "prompt") from error
    except ValueError as error:
        raise RequestError(400, str(error)) from error
    bad = [t for t in prompt_ids if not 0 <= t < vocab_rows]
    if bad:
        raise RequestError(400, f"prompt token {_shown(bad[0])} is not a valid id (the model has ids 0 to "
                                f"{vocab_rows - 1})", param="prompt")
    return Generation(kind=kind, prompt_ids=prompt_ids, settings=settings,
                      max_tokens=max_tokens if max_tokens is not None else settings.gen_length,
                      stop=_stop_sequences(body), stream=stream,
                      include_usage=bool(options.get("include_usage")), frames=frames,
                      dropped=dropped, images=images if pictures else [])


def _picture_prompt(tokenizer: Any, turns: list[dict[str, str]], pictures: list, vision: Any,
                    placeholder: Optional[int]) -> tuple[list, list[int]]:
    """([ImageSpan], prompt ids) of a chat with one picture in its last user message."""
    from llada_core.chat import encode_image_chat
    from llada_core.vision import ImageError, ImageSpan, load_image, prepare_image

    if vision is None:
        from app.session.pictures import NO_VISION

        raise RequestError(400, NO_VISION, param="messages", code="model_without_vision")
    last_user = max(n for n, turn in enumerate(turns, start=1) if turn["role"] == "user")
    if len(pictures) > 1 or pictures[0][0] != last_user:
        raise RequestError(400, "send one picture, in the last user message", param="messages")
    try:
        image = prepare_image(load_image(pictures[0][1]), vision)
    except ImageError as error:
        raise RequestError(400, f"message {last_user}: {error}", param="messages") from None
    ids, start = encode_image_chat(tokenizer, turns, image.tokens, placeholder)
    return [ImageSpan(start, image)], ids


# --- Text that is final: what a stream may send ----------------------------------------------

# --- HTTP -------------------------------------------------------------------------------------

class Server:
    """The ASGI app around a ModelHost (app.session.host)."""

    def __init__(self, worker: ModelHost, *, model_id: str, defaults: dict[str, Any],
                 api_key: Optional[str] = None, aliases: Sequence[str] = (), backend_name: str = "",
                 page: Optional[Callable[["Server"], list]] = None,
                 public_paths: frozenset[str] = frozenset()):
        self.worker, self.model_id, self.defaults = worker, model_id, dict(defaults)
        # The browser page's routes, and the paths served without the API key (the page and its
        # assets, never the API).
        self.page, self.public_paths = page, public_paths
        self.api_key = api_key or None
        self.model_ids = [model_id] + [a for a in aliases if a and a != model_id]
        self.backend_name = backend_name
        self.created = int(time.time())
        self.app = self._build_app()

    # Starlette is imported here, not at module level: `llada --help` stays light.
    def _build_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.middleware import Middleware
        from starlette.routing import Route

        async def http_error(request: Any, error: HTTPException) -> Any:
            kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
            return self._json(error_body(str(error.detail), kind=kind), error.status_code)

        async def request_error(request: Any, error: RequestError) -> Any:
            if error.status >= 500:
                log.warning("request %s: %s", _request_id(request), error.message)
            else:
                log.info("request %s refused (%d): %s", _request_id(request), error.status,
                         error.message)
            return self._json(error.body(), error.status, error.headers)

        return Starlette(
            routes=[
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/v1/models/{model_id:path}", self.get_model, methods=["GET"]),
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/completions", self.completions, methods=["POST"]),
                *(self.page(self) if self.page else []),  # the browser page (app/server/web)
            ],
            middleware=[Middleware(_RequestIds), Middleware(_AuthMiddleware, server=self)],
            exception_handlers={HTTPException: http_error, RequestError: request_error},
        )

    @staticmethod
    def _json(content: Any, status: int = 200, headers: Optional[dict[str, str]] = None) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse(content, status_code=status, headers=headers)

    def _model_card(self) -> dict[str, Any]:
        return {"id": self.model_id, "object": "model", "created": self.created, "owned_by": "llada"}

    async def list_models(self, request: Any) -> Any:
        return self._json({"object": "list", "data": [self._model_card()]})

    async def get_model(self, request: Any) -> Any:
        if request.path_params["model_id"] not in self.model_ids:
            raise RequestError(404, f"the model {json.dumps(request.path_params['model_id'])} does "
                                    "not exist", code="model_not_found", param="model")
        return self._json(self._model_card())

    async def chat_completions(self, request: Any) -> Any:
        return await self._complete(request, "chat")

    async def completions(self, request: Any) -> Any:
        return await self._complete(request, "text")

    async def _read_json(self, request: Any) -> Any:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
            raise RequestError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY_BYTES:
                raise RequestError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(data)
        except RecursionError:
            raise RequestError(400, "the request body is nested too deeply") from None
        except (UnicodeDecodeError, ValueError) as error:
            raise RequestError(400, f"the request body is not valid JSON: {error}") from error

    async def _complete(self, request: Any, kind: str) -> Any:
        body = await self._read_json(request)
        worker = self.worker
        args = worker.model.args
        # Tokenizing a long prompt takes seconds: off the event loop, which keeps serving.
        generation = await asyncio.to_thread(
            parse_generation, body, kind, tokenizer=worker.tokenizer, defaults=self.defaults,
            model_ids=self.model_ids, max_sequence_length=worker.loaded.max_length,
            vocab_rows=worker.loaded.vocab_rows, vision=worker.loaded.vision,
            placeholder=getattr(worker.model, "placeholder", None))
        answer = AnswerText(worker.tokenizer, args.mask_token_id, generation.max_tokens, generation.stop)
        request_id = _request_id(request)
        log.info("request %s: %s, %d prompt tokens, %s", request_id, kind,
                 len(generation.prompt_ids), generation.settings)
        run = _Run(worker, generation, request_id)
        ident = ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex
        if generation.stream:
            from starlette.responses import StreamingResponse

            return StreamingResponse(self._events(request, run, answer, ident),
                                     media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        try:
            async for kind_, payload in run.events(request):
                if kind_ == "frame":
                    answer.update(payload.tokens, payload.done, payload.settled)
                    if answer.complete:
                        run.cancel()
                        break
            if not answer.complete:
                answer.update(run.final_tokens(), True)
        finally:
            run.cancel()
        return self._json(self._completion_body(ident, kind, answer, generation, run))

    def _usage(self, answer: AnswerText, generation: Generation, run: "_Run") -> dict[str, Any]:
        """OpenAI's token counts, then the sampler's in the app's one vocabulary (stats_text):
        passes (nfe), steps run, step budget, tokens per pass, tokens/s, seconds."""
        return {"prompt_tokens": len(generation.prompt_ids), "completion_tokens": answer.tokens,
                "total_tokens": len(generation.prompt_ids) + answer.tokens,
                **json_stats(nfe=run.nfe, steps=run.steps,
                             step_budget=generation.settings.steps,
                             seconds=time.monotonic() - run.started, tokens=answer.tokens)}

    def _completion_body(self, ident: str, kind: str, answer: AnswerText, generation: Generation,
                         run: "_Run") -> dict[str, Any]:
        if kind == "chat":
            choice = {"index": 0, "message": {"role": "assistant", "content": answer.text},
                      "finish_reason": answer.finish_reason, "logprobs": None}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": answer.text, "finish_reason": answer.finish_reason,
                      "logprobs": None}
            obj = "text_completion"
        return {"id": ident, "object": obj, "created": int(time.time()), "model": self.model_id,
                "choices": [choice], "usage": self._usage(answer, generation, run),
                "llada": {"sampler": dataclasses.asdict(generation.settings), "backend": self.backend_name,
                          **self._context_note(generation)}}

    @staticmethod
    def _context_note(generation: Generation) -> dict[str, Any]:
        """The context policy's visible notice: how many of the oldest messages were left out."""
        if not generation.dropped:
            return {}
        return {"dropped_messages": generation.dropped, "notice": dropped_notice(generation.dropped, kept=False)}

    def _chunk(self, ident: str, kind: str, delta: Optional[str], finish: Optional[str],
               first: bool = False) -> dict[str, Any]:
        if kind == "chat":
            content: dict[str, Any] = {}
            if first:
                content["role"] = "assistant"
            if delta is not None:
                content["content"] = delta
            choice = {"index": 0, "delta": content, "finish_reason": finish, "logprobs": None}
            obj = "chat.completion.chunk"
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}
            obj = "text_completion"
        return {"id": ident, "object": obj, "created": int(time.time()), "model": self.model_id,
                "choices": [choice]}

    async def _events(self, request: Any, run: "_Run", answer: AnswerText,
                      ident: str) -> AsyncIterator[str]:
        generation = run.generation
        kind = generation.kind
        pieces = None
        if generation.frames:
            from app.session.frame_text import TokenPieces

            pieces = TokenPieces(self.worker.tokenizer, self.worker.model.args.mask_token_id)
        try:
            if kind == "chat":
                first = self._chunk(ident, kind, "", None, first=True)
                first.update({"llada": note} if (note := self._context_note(generation)) else {})
                yield _sse(first)
            async for event, payload in run.events(request):
                if event == "error":
                    yield _stream_error(payload, run.request_id)
                    return
                if event != "frame":
                    continue
                if pieces is not None:
                    frame_chunk = self._chunk(ident, kind, None, None)
                    frame_chunk["choices"] = []
                    frame_chunk["llada_frame"] = frame_payload(payload, pieces, generation.settings)
                    yield _sse(frame_chunk, event="llada.frame")
                delta = answer.update(payload.tokens, payload.done, payload.settled)
                if delta:
                    yield _sse(self._chunk(ident, kind, delta, None))
                if answer.complete:
                    run.cancel()
                    break
            if run.error is not None:
                yield _stream_error(run.error, run.request_id)
                return
            if not answer.complete:
                delta = answer.update(run.final_tokens(), True)
                if delta:
                    yield _sse(self._chunk(ident, kind, delta, None))
            yield _sse(self._chunk(ident, kind, None if kind == "chat" else "", answer.finish_reason))
            if generation.include_usage:
                usage_chunk = self._chunk(ident, kind, None, None)
                usage_chunk["choices"] = []
                usage_chunk["usage"] = self._usage(answer, generation, run)
                yield _sse(usage_chunk)
            yield "data: [DONE]\n\n"
        except Exception as error:  # noqa: BLE001 - the stream still ends, with an error event
            log.exception("request %s: the stream failed", run.request_id)
            yield _stream_error(error, run.request_id)
        finally:
            # A client that went away cancels its answer at the next step.
            run.cancel()


class _AuthMiddleware:
    """With an API key set, every request needs `Authorization: Bearer KEY` (else 401)."""

    def __init__(self, app: Any, server: Server):
        self.app, self.server = app, server

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        key = self.server.api_key
        if (scope["type"] == "http" and key is not None
                and scope.get("path", "") not in self.server.public_paths):
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"").decode("latin-1")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                    token.strip().encode("utf-8"), key.encode("utf-8")):
                from starlette.responses import JSONResponse

                response = JSONResponse(
                    error_body("Missing or wrong API key: send 'Authorization: Bearer KEY' with the "
                               "key `llada serve` was started with.", code="invalid_api_key"),
                    status_code=401, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Run:
    """One queued job seen from the event loop: its frames as an async stream."""

    def __init__(self, worker: ModelHost, generation: Generation, request_id: str = ""):
        self.worker, self.generation, self.request_id = worker, generation, request_id
        self.loop = asyncio.get_running_loop()
        self.inbox: "asyncio.Queue[tuple[str, Any]]" = asyncio.Queue()
        self.nfe = 0
        self.steps = 0
        self.started = time.monotonic()
        self.last_tokens: Optional[Sequence[int]] = None
        self.error: Optional[BaseException] = None
        self.job = Job(generation.prompt_ids, generation.settings, self._deliver,
                       constraints=generation.constraints, images=generation.images,
                       request_id=request_id)
        try:
            worker.submit(self.job)
        except HostBusy as busy:
            raise RequestError(503, f"the server is busy ({busy.waiting} requests are waiting for "
                                    "the model); try again in a few seconds",
                               kind="server_busy", code="server_busy",
                               headers={"Retry-After": str(RETRY_AFTER_S)}) from None

    def _deliver(self, kind: str, payload: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, (kind, payload))
        except RuntimeError:  # the event loop is gone (server shutting down)
            self.job.cancel()

    def cancel(self) -> None:
        self.job.cancel()

    def final_tokens(self) -> Sequence[int]:
        return self.last_tokens if self.last_tokens is not None else []

    async def events(self, request: Any) -> AsyncIterator[tuple[str, Any]]:
        """Frames until the job ends; a client that disconnects cancels the job."""
        checked = time.monotonic()
        while True:
            try:
                kind, payload = await asyncio.wait_for(self.inbox.get(), timeout=DISCONNECT_POLL_S)
            except asyncio.TimeoutError:
                kind, payload = "", None
            if time.monotonic() - checked >= DISCONNECT_POLL_S:
                checked = time.monotonic()
                if await request.is_disconnected():
                    self.cancel()
                    return
            if not kind:
                continue
            if kind == "frame":
                self.nfe, self.steps, self.last_tokens = payload.nfe, payload.index + 1, payload.tokens
            elif kind == "error":
                self.error = payload
                if not self.generation.stream:
                    raise RequestError(500, client_error_message(payload, self.request_id),
                                       kind="server_error")
                yield kind, payload
                return
            elif kind == "end":
                return
            yield kind, payload


def _request_id(request: Any) -> str:
    return request.scope.get("state", {}).get("request_id", "")


def _stream_error(error: BaseException, request_id: str) -> str:
    """The last events of a stream that failed: an error event, then [DONE]."""
    message = client_error_message(error, request_id)
    return _sse(error_body(message, kind="server_error", code="generation_failed")) + "data: [DONE]\n\n"


class _RequestIds:
    """Gives every request an id (logged, and sent back as X-Request-Id) and turns any failure
    into a logged traceback and a JSON 500 that names the id, never the exception's text."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        status: list[int] = []

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: BLE001 - logged with its traceback; the client gets the id
            log.exception("request %s %s %s failed", request_id, scope.get("method"), scope.get("path"))
            if not status:
                from starlette.responses import JSONResponse

                await JSONResponse(error_body(
                    f"The server failed on this request (error id {request_id}; the server's log "
                    "has the details).", kind="server_error", code="internal_error"),
                    status_code=500, headers={"X-Request-Id": request_id})(scope, receive, send)
            return
        finally:
            log.info("request %s %s %s -> %s in %.3f s", request_id, scope.get("method"),
                     scope.get("path"), status[0] if status else "-", time.monotonic() - started)


def frame_payload(frame: Any, pieces: Callable[[Sequence[int]], Sequence[str]],
                  settings: Optional[SamplerSettings] = None) -> dict[str, Any]:
    """A denoising step for clients that asked for frames: ids (mask id where masked), each
    position's text (masks as ░), the step each position was committed at (-1: masked), its
    confidence when committed (0 while masked), and the block length and step budget; with
    LLaDA2.1's editing decoder, the step that last rewrote each position (`edited_at`, -1: never;
    absent for the other samplers)."""
    edits = getattr(frame, "edited_at", None)
    extra = {} if edits is None else {"edited_at": [int(e) for e in edits]}
    return {**extra, "block_length": settings.block_length if settings else len(frame.tokens),
            "total_steps": settings.steps if settings else 0,
            "confidence": [round(float(c), 4) for c in frame.confidence],
            "step": int(frame.index), "block": int(frame.block), "nfe": int(frame.nfe),
            "committed": int(frame.committed), "done": bool(frame.done),
            "tokens": [int(t) for t in frame.tokens],
            "committed_at": [int(t) for t in frame.committed_at],
            "pieces": list(pieces(frame.tokens))}


def _sse(data: Any, event: Optional[str] = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n"


# --- Running it -------------------------------------------------------------------------------

def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, bound before the model loads so a port in use is one
    sentence (ValueError) rather than a URL followed by an error."""
    import errno

    try:
        family = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host.strip("[]"), port), family=family)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} on {host} is already in use (is another server "
                             "running?); choose another with --port") from error
        reason = error.strerror or str(error)
        raise ValueError(f"cannot listen on {host}:{port}: {reason}") from error


def uvicorn_server(server: Server, host: str, port: int, log_level: str = "info") -> Any:
    import uvicorn

    config = uvicorn.Config(server.app, host=host, port=port, log_level=log_level,
                            access_log=log_level == "debug", lifespan="off",
                            server_header=False)
    return uvicorn.Server(config)
