"""Training small LLaDA models and building test checkpoints; not needed to run a model.

The demo tasks and their data, LLaDA's training objective and the resumable trainer (PyTorch),
and the builder of tiny random checkpoints in the official layout (numpy only). Nothing is
imported here: each command imports the module it uses, so only `llada train` needs torch.
"""
