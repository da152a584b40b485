"""Models: the catalog of known checkpoints, local folders, downloads and the fit check.

Qt-free; the window and `llada download` both use it.
"""
