"""Training of the edgesharp student: architectures, teachers, data, the distillation loop.

Importing `train` is light (no torch); `train.models`, `train.loop` and the rest import torch.
"""
