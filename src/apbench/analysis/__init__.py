"""Analyses of a frozen backbone (issue 17): layer similarity (debiased linear CKA), mean attention
distance per ViT block and head, per-point linear probes and the effective receptive field.

``apbench analyze [HYDRA OVERRIDES]`` runs them (see :mod:`apbench.analysis.analyze`); the pieces are
plain functions usable from a notebook.
"""
