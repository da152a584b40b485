"""LLaDA-V in MLX: the SigLIP vision tower and the projector of llada_torch/llada_v.py, feeding our
MLX LLaDA model (`../shared/llada-v-spec.md` §4-5; the picture's features merged by
llada_core.vision and written over the prompt's placeholder positions)."""

from __future__ import annotations

import math
from typing import Optional

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from llada_core.vision import ImageInput, ImageSpan, VisionConfig, merge_features
from llada_mlx.model import Model as LLaDAModel
from llada_mlx.model import ModelArgs


class VisionAttention(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, 1.0 / math.sqrt(d // heads)
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def __call__(self, x: mx.array) -> mx.array:
        B, L, d = x.shape

        def heads(t: mx.array) -> mx.array:
            return t.reshape(B, L, self.heads, d // self.heads).transpose(0, 2, 1, 3)

        out = mx.fast.scaled_dot_product_attention(heads(self.q_proj(x)), heads(self.k_proj(x)),
                                                   heads(self.v_proj(x)), scale=self.scale)
        return self.out_proj(out.transpose(0, 2, 1, 3).reshape(B, L, d))


class VisionMLP(nn.Module):
    def __init__(self, d: int, inner: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, inner), nn.Linear(inner, d)

    def __call__(self, x: mx.array) -> mx.array:
        return self.fc2(nn.gelu_approx(self.fc1(x)))


class VisionLayer(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        d = config.hidden_size
        self.layer_norm1 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.self_attn = VisionAttention(d, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.mlp = VisionMLP(d, config.intermediate_size)

    def __call__(self, x: mx.array) -> mx.array:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class VisionEmbeddings(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.patch_size = config.patch_size
        # stored as torch lays it out ([out, in, kh, kw]); MLX's conv wants [out, kh, kw, in]
        self.patch_embedding = nn.Conv2d(3, config.hidden_size, config.patch_size,
                                         stride=config.patch_size)
        self.position_embedding = nn.Embedding(config.patches, config.hidden_size)

    def __call__(self, pixels: mx.array) -> mx.array:
        patches = self.patch_embedding(pixels.transpose(0, 2, 3, 1))  # NHWC
        B, h, w, d = patches.shape
        return patches.reshape(B, h * w, d) + self.position_embedding.weight


class VisionEncoder(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.layers = [VisionLayer(config) for _ in range(config.num_hidden_layers)]


class VisionTower(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.embeddings = VisionEmbeddings(config)
        self.encoder = VisionEncoder(config)

    def __call__(self, pixels: mx.array) -> mx.array:
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return x  # before the post-layernorm (spec §4)


class Projector(nn.Module):
    def __init__(self, vision_width: int, width: int):
        super().__init__()
        self.linear_1, self.linear_2 = nn.Linear(vision_width, width), nn.Linear(width, width)

    def __call__(self, x: mx.array) -> mx.array:
        return self.linear_2(nn.gelu(self.linear_1(x)))


PATCH_WEIGHT = "vision.embeddings.patch_embedding.weight"  # the patch convolution's


class Model(LLaDAModel):
    """LLaDA with eyes: `images(spans)` sets the pictures of the answer being generated."""

    def __init__(self, args: ModelArgs, vision: VisionConfig, placeholder: int):
        super().__init__(args)
        self.vision_config, self.placeholder = vision, placeholder
        self.vision = VisionTower(vision)
        self.projector = Projector(vision.hidden_size, args.d_model)
        self.image_newline = mx.zeros((args.d_model,))
        self._spans: list[tuple[int, mx.array]] = []

    def encode_image(self, image: ImageInput) -> mx.array:
        dtype = self.vision.embeddings.patch_embedding.weight.dtype
        features = self.projector(self.vision(mx.array(image.pixels).astype(dtype)))
        features = np.array(features.astype(mx.float32))
        newline = np.array(self.image_newline.astype(mx.float32))
        merged = merge_features(features, newline, image, self.vision_config.unit)
        return mx.array(merged).astype(self.dtype)

    def images(self, spans: list[ImageSpan]) -> None:
        self._spans = [(span.start, self.encode_image(span.image)) for span in spans]

    def embed(self, input_ids: mx.array, offset: int = 0) -> Optional[mx.array]:
        if not self._spans:
            return None
        x = self.model.embed_tokens(input_ids)
        length = input_ids.shape[1]
        for start, features in self._spans:
            low, high = max(start, offset), min(start + features.shape[0], offset + length)
            if low >= high:
                continue
            window = slice(low - offset, high - offset)
            held = (input_ids[:, window] == self.placeholder)[..., None]
            x[:, window] = mx.where(held, features[low - start:high - start].astype(x.dtype),
                                    x[:, window])
        return x

    @staticmethod
    def sanitize_vision(weights: dict[str, mx.array]) -> dict[str, mx.array]:
        """The patch convolution from torch's [out, in, kh, kw] to MLX's [out, kh, kw, in]."""
        if PATCH_WEIGHT in weights and weights[PATCH_WEIGHT].ndim == 4:
            weights[PATCH_WEIGHT] = weights[PATCH_WEIGHT].transpose(0, 2, 3, 1)
        return weights

