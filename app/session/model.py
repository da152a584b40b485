"""A loaded model as every front end sees it: the backend that runs it, the model, its tokenizer
and what the conversation rules need to know about it (its identity and context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from app.session.conversation import ModelIdentity, tokenizer_fingerprint

DEFAULT_CONTEXT = 4096  # a model whose config.json declares no max_sequence_length


@dataclass
class LoadedModel:
    backend: Any                  # an app.session.backends.Backend module
    model: Any
    tokenizer: Any
    backend_name: str
    path: str                     # the folder or repo id, as asked for
    options: dict = field(default_factory=dict)   # the load options ("dtype", "device")
    identity: Optional[ModelIdentity] = None

    def __post_init__(self) -> None:
        if self.identity is None:
            from llada_core.chat import is_base_model

            self.identity = ModelIdentity(
                model=self.path, fingerprint=tokenizer_fingerprint(self.tokenizer),
                base=is_base_model(self.tokenizer), max_length=context_of(self.model))

    @property
    def mask_id(self) -> int:
        return int(self.model.args.mask_token_id)

    @property
    def max_length(self) -> int:
        return self.identity.max_length

    @property
    def vocab_rows(self) -> int:
        """Ids the model has an embedding row for (0 .. rows-1)."""
        args = self.model.args
        return int(getattr(args, "rows", None) or args.vocab_size)

    @property
    def vision(self) -> Any:
        """The model's llada_core.vision.VisionConfig; None for a model without vision."""
        return getattr(self.model, "vision_config", None)

    def dtype_name(self) -> str:
        """'bfloat16', 'float32', ... as the backend reports it."""
        return str(self.backend.describe(self.model).get("dtype", ""))

    def describe(self) -> dict[str, Any]:
        """What a front end shows about the loaded model."""
        identity = self.identity
        described = self.backend.describe(self.model)
        return {"path": self.path, "backend": self.backend_name, "mask_id": self.mask_id,
                "device": str(described.get("device", "")), "dtype": self.dtype_name(),
                "fingerprint": identity.fingerprint, "base": identity.base,
                "max_length": identity.max_length, "vision": self.vision is not None,
                "block_diffusion": self.block_diffusion()}

    def block_diffusion(self) -> Optional[dict]:
        """LLaDA 2.x's decoder as the settings panel describes it ({"editing_threshold": its
        2.1 editing threshold, or None for 2.0's}); None for a model that is not block diffusion."""
        args = getattr(self.model, "args", None)
        if getattr(args, "model_type", None) != "llada2_moe":
            return None
        return {"editing_threshold": getattr(args, "editing_threshold", None)}

    def release(self) -> None:
        """Drop the model and hand its memory back to the device (the backend's caches)."""
        backend = self.backend
        self.model = self.tokenizer = None
        backend.release_memory()


def context_of(model: Any) -> int:
    """The model's context (config.json's max_sequence_length or its family's equivalent)."""
    return int(getattr(model.args, "max_sequence_length", None) or DEFAULT_CONTEXT)


def load_model(path: str, backend_name: Optional[str] = None, *, dtype: Optional[str] = None,
               device: Optional[str] = None) -> LoadedModel:
    """Load `path` (a folder or Hub repo id) on the named backend (None: this machine's default);
    errors are the backends' own (app.session.errors turns them into one sentence)."""
    from app.session.backends import default_backend, get_backend, load_options

    name = backend_name or default_backend()
    backend = get_backend(name)
    model, tokenizer = backend.load(path, **load_options(backend, dtype=dtype, device=device))
    return LoadedModel(backend=backend, model=model, tokenizer=tokenizer, backend_name=name,
                       path=str(path), options={"dtype": dtype, "device": device})
