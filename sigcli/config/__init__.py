"""Options of every `sig` command: the one place each option is declared.

A command's options model holds each option's name, type, default, choices, validation and
help. The Typer command is derived from it (:mod:`sigcli.cli.derive`), the library function
takes it, and the ``config.json`` saved beside a command's outputs is its dump. These modules
import neither torch nor scikit-learn, so ``sig --help`` and every ``sig CMD --help`` start fast.
The flags' vocabulary (one flag per meaning across commands) is ``docs/vocabulary.md``.
"""
