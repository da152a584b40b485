"""The one place an answer is generated: every front end (the window's worker, the server's
model host, `llada generate`/`chat`/`infill`, evaluation, the lm-eval model, the benchmark)
calls `answer_steps`, and no other app module calls a backend's sampler.

Settings arrive typed (llada_core.settings.SamplerSettings, validated once with one-sentence
errors); the prompt and answer are checked against the model's context here, with one wording
(llada_core.settings.check_fits_context), before the backend sees them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

from app.session.model import LoadedModel
from llada_core.settings import SamplerSettings, check_fits_context

if TYPE_CHECKING:
    from llada_core.vision import ImageSpan


def typed_settings(settings: SamplerSettings | Mapping[str, Any]) -> SamplerSettings:
    """`settings` as the one settings type (a mapping is validated: ValueError names what is
    wrong)."""
    if isinstance(settings, SamplerSettings):
        return settings
    try:
        return SamplerSettings(**dict(settings))
    except TypeError as error:  # an unknown key
        raise ValueError(f"unknown setting: {error}") from error


def answer_steps(loaded: LoadedModel, prompt_ids: Sequence[int],
                 settings: SamplerSettings | Mapping[str, Any], *,
                 constraints: Optional[Mapping[int, Sequence[int]]] = None,
                 images: Sequence[ImageSpan] = ()) -> Iterator[Any]:
    """The sampler's frames (llada_core StepFrame) for `prompt_ids`; closing the iterator stops
    the answer at its next step. `images`: pictures whose features fill their placeholder
    positions of the prompt (LLaDA-V; llada_core.chat.encode_image_chat builds such a prompt)."""
    settings = typed_settings(settings)
    if images and loaded.vision is None:
        from app.session.pictures import NO_VISION

        raise ValueError(NO_VISION)
    check_fits_context(len(prompt_ids), settings.gen_length, loaded.max_length)
    extra = {"images": list(images)} if images else {}
    return loaded.backend.generate_steps(loaded.model, list(prompt_ids),
                                         constraints=dict(constraints or {}),
                                         **dataclasses.asdict(settings), **extra)


@dataclass
class Finished:
    """The last frame of an answer and how long it took."""

    frame: Any
    seconds: float

    @property
    def tokens(self) -> list[int]:
        return [int(t) for t in self.frame.tokens]

    @property
    def nfe(self) -> int:
        return int(self.frame.nfe)

    @property
    def steps(self) -> int:
        return int(self.frame.index) + 1


def run_to_end(loaded: LoadedModel, prompt_ids: Sequence[int],
               settings: SamplerSettings | Mapping[str, Any], *,
               constraints: Optional[Mapping[int, Sequence[int]]] = None,
               on_frame: Optional[Any] = None, images: Sequence[ImageSpan] = ()) -> Finished:
    """The whole answer at once (commands and evaluation); `on_frame(frame)` sees each step."""
    started = time.perf_counter()
    frame = None
    for frame in answer_steps(loaded, prompt_ids, settings, constraints=constraints,
                              images=images):
        if on_frame is not None:
            on_frame(frame)
    if frame is None:  # a sampler always yields at least one frame
        raise RuntimeError("the sampler produced no step")
    return Finished(frame, time.perf_counter() - started)
