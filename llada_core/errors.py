"""Errors the framework-free core raises, shared by config and checkpoint reading."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete or not in a layout we can load."""
