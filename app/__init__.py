"""LLaDA Desktop: the window and the `llada` command. No array math here: backends yield frames."""

__version__ = "0.1.0"
