"""Training: one loop (:mod:`~sigcli.training.loop`) shared by every objective.

Objectives: :mod:`~sigcli.training.supervised` (SigNet, SigNet-F) and distillation. Batches
for all of them come from :mod:`~sigcli.training.data`.
"""
