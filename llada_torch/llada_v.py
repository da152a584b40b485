"""LLaDA-V in PyTorch: a SigLIP vision tower and a two-layer projector feeding our LLaDA model.

The tower (`../shared/llada-v-spec.md` §4): a 14-px patch convolution without padding, learned
position embeddings, pre-LN encoder layers (attention with biases, MLP with tanh-GELU), the last
layer's hidden state taken before the post-layernorm. The projector (§5): Linear, exact GELU,
Linear. The picture's features are merged in prompt order by llada_core.vision and written over
the prompt positions that hold the image placeholder (the language model is llada_torch.model's
LLaDA, loaded from LLaMA-style names); a pass whose window holds anything else there (guidance's
unconditional copy masks the prompt, pictures included) keeps the token embeddings.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llada_core.vision import ImageInput, ImageSpan, VisionConfig, merge_features
from llada_torch.model import Model as LLaDAModel
from llada_torch.model import ModelArgs


class VisionAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(B, L, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)),
                                             heads(self.v_proj(x)))
        return self.out_proj(out.transpose(1, 2).reshape(B, L, d))


class VisionMLP(nn.Module):
    def __init__(self, d: int, inner: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, inner), nn.Linear(inner, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class VisionLayer(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        d = config.hidden_size
        self.layer_norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.self_attn = VisionAttention(d, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(d, config.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(3, config.hidden_size, config.patch_size,
                                         stride=config.patch_size)
        self.position_embedding = nn.Embedding(config.patches, config.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # row-major
        return patches + self.position_embedding.weight


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.layers = nn.ModuleList(VisionLayer(config) for _ in range(config.num_hidden_layers))


class VisionTower(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        self.encoder = VisionEncoder(config)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return x  # before the post-layernorm (spec §4)


class Projector(nn.Module):
    def __init__(self, vision_width: int, width: int):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(vision_width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(x)))


class Model(LLaDAModel):
    """LLaDA with eyes: `images(spans)` sets the pictures of the answer being generated."""

    def __init__(self, args: ModelArgs, vision: VisionConfig, placeholder: int):
        super().__init__(args)
        self.vision_config, self.placeholder = vision, placeholder
        self.vision = VisionTower(vision)
        self.projector = Projector(vision.hidden_size, args.d_model)
        self.image_newline = nn.Parameter(torch.empty(args.d_model))
        self._spans: list[tuple[int, torch.Tensor]] = []

    def encode_image(self, image: ImageInput) -> torch.Tensor:
        """[image.tokens, d_model] in prompt order, in the model's dtype."""
        weight = self.vision.embeddings.patch_embedding.weight
        with torch.inference_mode():
            pixels = torch.from_numpy(image.pixels).to(weight.device, weight.dtype)
            features = self.projector(self.vision(pixels)).float().cpu().numpy()
            newline = self.image_newline.float().cpu().numpy()
        merged = merge_features(features, newline, image, self.vision_config.unit)
        return torch.from_numpy(np.ascontiguousarray(merged)).to(weight.device, self.dtype)

    def images(self, spans: list[ImageSpan]) -> None:
        self._spans = [(span.start, self.encode_image(span.image)) for span in spans]

    def embed(self, input_ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        x = super().embed(input_ids, offset)
        length = input_ids.shape[1]
        for start, features in self._spans:
            low, high = max(start, offset), min(start + len(features), offset + length)
            if low >= high:
                continue
            window = slice(low - offset, high - offset)
            held = (input_ids[:, window] == self.placeholder)[..., None]
            x = x.clone() if x.requires_grad else x
            x[:, window] = torch.where(held, features[low - start:high - start].to(x.dtype),
                                       x[:, window])
        return x

