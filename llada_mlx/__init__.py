"""LLaDA in MLX for Apple Silicon: 8-bit weights, the same sampler. (Arrives with its own issue.)"""
