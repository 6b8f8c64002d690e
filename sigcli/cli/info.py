"""Describe what sig wrote or reads: a signature set, feature file, checkpoint, results,
WI classifier, run folder, exported network, event file or the download cache.

One line per path; --json gives each path's kind, description and the facts behind it.

Example: sig info runs/signet data/gpds.npz results.pkl
"""

from __future__ import annotations

import json

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.info import InfoOptions


def run(options: InfoOptions) -> None:
    from sigcli.info import describe, json_value

    if options.as_json:
        described = [describe(path, options.allow_pickle).as_dict(path) for path in options.paths]
        console.out.print(json.dumps(described, indent=2, ensure_ascii=False, default=json_value), markup=False,
                          highlight=False, soft_wrap=True)
        return
    for path in options.paths:
        console.out.print(f"[bold]{console.literal(path)}[/bold]: "
                          f"{console.literal(describe(path, options.allow_pickle).summary)}", highlight=False,
                          soft_wrap=True)


main = command(InfoOptions, run)
