"""Adversarial examples (docs/adversarial.md): the attacks, and attacks on a verification system."""
