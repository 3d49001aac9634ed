"""Training of the edgesharp student: architectures, teachers, data, the distillation loop.

Importing `train` is light (no torch); `edgesharp.train.models`, `edgesharp.train.loop` and the rest import torch.
"""
