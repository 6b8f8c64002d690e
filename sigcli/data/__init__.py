"""Signature sets, dataset plugins and the synthetic signature generator."""
