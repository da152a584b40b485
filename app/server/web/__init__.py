"""The browser page of `llada serve`: a chat page at `/` that draws the denoising canvas live.

The page (index.html, app.js, style.css in this folder: no build step, nothing from a CDN) talks
to the same OpenAI-compatible endpoints as any client, asking for `llada_frames` to draw the
canvas. This module adds what the page needs beyond them:

- GET `/` and `/web/{file}`: the page and its assets, open without the API key (they hold no
  data; the page asks for the key when the API answers 401 and keeps it in the tab).
- GET `/v1/llada/info`: the model's id, backend, dtype and the server's default settings, whether
  it takes pictures (`vision`) and its block decoder (`block_diffusion`, LLaDA 2.x; else null).
- POST `/v1/llada/infill`: the holes of a text (`[____]`, as `llada infill`) filled in place,
  validated by the same code as the CLI; streamed as `llada.frame` events when asked.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
PUBLIC_PATHS = frozenset({"/", "/index.html", "/favicon.ico"} | {f"/web/{name}" for name in ASSETS})
# The page runs no script but its own: model text can never become markup or script.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
INFILL_FIELDS = frozenset({"text", "steps", "temperature", "mode", "threshold", "seed",
                           "cfg_scale", "remasking", "stream", "model"})


def web_routes(server: Any) -> list[Any]:
    """The page's routes, bound to a Server (app.server.api)."""
    from starlette.routing import Route

    async def page(request: Any) -> Any:
        return _file("index.html", "text/html; charset=utf-8")

    async def favicon(request: Any) -> Any:
        from starlette.responses import Response

        return Response(status_code=204)

    async def info(request: Any) -> Any:
        return server._json(model_info(server))

    async def infill(request: Any) -> Any:
        return await _infill(server, request)

    async def asset(request: Any) -> Any:
        from app.server.api import RequestError

        name = request.path_params["name"]
        if name not in ASSETS:  # a fixed list: no path from the request reaches the disk
            raise RequestError(404, "no such file", kind="not_found_error")
        return _file(name, ASSETS[name])

    return [
        Route("/", page, methods=["GET"]),
        Route("/index.html", page, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/web/{name}", asset, methods=["GET"]),
        Route("/v1/llada/info", info, methods=["GET"]),
        Route("/v1/llada/infill", infill, methods=["POST"]),
    ]


def _file(name: str, media_type: str) -> Any:
    from starlette.responses import Response

    return Response((WEB_DIR / name).read_bytes(), media_type=media_type, headers=PAGE_HEADERS)


def model_info(server: Any) -> dict[str, Any]:
    """What the page shows and starts its settings from."""
    return {"model": server.model_id, "backend": server.backend_name,
            "dtype": server.worker.loaded.dtype_name(),
            "defaults": {key: value for key, value in server.defaults.items()
                         if isinstance(value, (int, float, str, bool)) or value is None},
            "max_sequence_length": server.worker.loaded.max_length,
            "api_key_required": server.api_key is not None,
            # whether a question may carry a picture (LLaDA-V), and LLaDA 2.x's decoder
            "vision": server.worker.loaded.vision is not None,
            "block_diffusion": server.worker.loaded.block_diffusion()}


def parse_infill_request(body: Any, *, tokenizer: Any, defaults: dict[str, Any],
                         max_sequence_length: int) -> tuple[Any, Any, bool]:
    """(canvas, SamplerSettings, stream) of an infill request, checked
    by the code `llada infill` uses; RequestError (400) names what is wrong."""
    from app.server.api import RequestError, _check_text, _number, _shown, apply_sampler_fields
    from llada_core.constraints import infill_canvas, infill_lengths
    from llada_core.settings import check_fits_context

    if not isinstance(body, dict):
        raise RequestError(400, "the request body must be a JSON object")
    _check_text(body)
    for name in body:
        if name not in INFILL_FIELDS:
            raise RequestError(400, f"'{_shown(name)[1:-1]}' is not a field of an infill request",
                               param=name, code="unknown_parameter")
    text = body.get("text")
    if not isinstance(text, str):
        raise RequestError(400, "'text' must be a string with holes such as [____]", param="text")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestError(400, "'stream' must be true or false", param="stream")
    try:
        canvas = infill_canvas(tokenizer, text)
        sampler = dict(defaults)
        sampler.update(infill_lengths(canvas, _number(body, "steps", whole=True)))
    except ValueError as error:
        raise RequestError(400, str(error), param="text", code="invalid_settings") from error
    settings = apply_sampler_fields(body, sampler)
    try:  # BOS, then the text's canvas as the answer
        check_fits_context(1, canvas.length, max_sequence_length)
    except ValueError as error:
        raise RequestError(400, str(error), code="context_length_exceeded", param="text") from error
    return canvas, settings, stream


async def _infill(server: Any, request: Any) -> Any:
    import asyncio

    from app.session.frame_text import TokenPieces
    from app.server.api import Generation, RequestError, _Run, _request_id, _sse, _stream_error, frame_payload
    from llada_core.chat import bos_id
    from llada_core.constraints import infill_text

    body = await server._read_json(request)
    worker = server.worker
    args = worker.model.args
    if isinstance(body, dict) and body.get("model") is not None and body["model"] not in server.model_ids:
        raise RequestError(404, f"the model {json.dumps(body['model'])} does not exist",
                           code="model_not_found", param="model")
    canvas, settings, stream = await asyncio.to_thread(
        parse_infill_request, body, tokenizer=worker.tokenizer, defaults=server.defaults,
        max_sequence_length=worker.loaded.max_length)
    bos = bos_id(worker.tokenizer)
    prompt = [bos] if bos is not None else []
    generation = Generation(kind="infill", prompt_ids=prompt, settings=settings,
                            constraints=canvas.constraints(),
                            max_tokens=canvas.length, stop=[], stream=stream, include_usage=False,
                            frames=stream)
    request_id = _request_id(request)
    log.info("request %s: infill, %d holes, %d canvas tokens", request_id, len(canvas.holes),
             canvas.length)
    started = time.perf_counter()
    run = _Run(worker, generation, request_id)
    shown_settings = dataclasses.asdict(settings)

    def result() -> dict[str, Any]:
        tokens = [int(t) for t in run.final_tokens()]
        return {"object": "llada.infill", "model": server.model_id,
                "text": infill_text(worker.tokenizer, tokens),
                "holes": [{"start": start, "length": length, "ids": ids,
                           "text": infill_text(worker.tokenizer, ids)}
                          for (start, length), ids in zip(canvas.holes, canvas.filled(tokens))],
                "canvas_ids": tokens, "nfe": run.nfe, "steps": run.steps,
                "seconds": round(time.perf_counter() - started, 4), "settings": shown_settings}

    if not stream:
        try:
            async for _ in run.events(request):
                pass
        finally:
            run.cancel()
        return server._json(result())

    async def events() -> Any:
        pieces = TokenPieces(worker.tokenizer, args.mask_token_id)
        try:
            async for event, payload in run.events(request):
                if event == "error":
                    yield _stream_error(payload, request_id)
                    return
                if event == "frame":
                    frame = frame_payload(payload, pieces, settings)
                    frame["holes"] = [[start, length] for start, length in canvas.holes]
                    yield _sse({"object": "llada.infill.frame", "llada_frame": frame},
                               event="llada.frame")
            if run.error is not None:
                yield _stream_error(run.error, request_id)
                return
            yield _sse(result())
            yield "data: [DONE]\n\n"
        except Exception as error:  # noqa: BLE001 - the stream still ends, with an error event
            log.exception("request %s: the infill stream failed", request_id)
            yield _stream_error(error, request_id)
        finally:
            run.cancel()

    from starlette.responses import StreamingResponse

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
