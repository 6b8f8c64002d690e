"""Describe a file sig made or reads: a signature set, a feature file or a checkpoint.

Example: sig info data/gpds.npz
"""

from __future__ import annotations

import json

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.info import InfoOptions


def run(options: InfoOptions) -> None:
    from sigcli.info import describe

    if options.as_json:
        described = [{"path": str(path), "description": describe(path, options.allow_pickle)}
                     for path in options.paths]
        console.out.print(json.dumps(described, indent=2, ensure_ascii=False), markup=False, highlight=False,
                          soft_wrap=True)
        return
    for path in options.paths:
        console.out.print(f"[bold]{console.literal(path)}[/bold]: "
                          f"{console.literal(describe(path, options.allow_pickle))}", highlight=False, soft_wrap=True)


main = command(InfoOptions, run)
