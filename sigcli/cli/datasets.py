"""List the installed dataset loaders, or describe one: where to get the data, the folder layout.

Loaders are plugins registered in entry-point group 'sigcli.datasets' (sig's own and any
installed package's). A plugin that fails to load is listed as broken with its error; a name
registered by two distributions is listed as duplicate and refused until one is removed.
SIGCLI_LOAD_PLUGINS=name,... (entry-point or distribution names) restricts which load.

Example: sig datasets cedar
"""

from __future__ import annotations

import json

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.datasets import DatasetsOptions


def run(options: DatasetsOptions) -> None:
    from sigcli.data.plugins import ENV_VAR, get_loader, list_plugins

    as_json, wanted = options.as_json, options.wanted
    if wanted:
        loader = get_loader(wanted)
        if as_json:
            record = next(p for p in list_plugins() if p.name == wanted).as_dict()
            console.out.print(json.dumps({**record, "description": loader.describe()}, indent=2),
                              markup=False, highlight=False, soft_wrap=True)
        else:
            console.out.print(loader.describe().rstrip(), markup=False, highlight=False, soft_wrap=True)
        return

    plugins = list_plugins()
    if as_json:
        console.out.print(json.dumps([p.as_dict() for p in plugins], indent=2),
                          markup=False, highlight=False, soft_wrap=True)
    else:
        table = Table(title="dataset loaders (sigcli.datasets)",
                      caption="per user: genuine/skilled/simple signatures (?: from the data); canvas: height×width")
        for column in ("name", "distribution", "version", "status", "canvas", "per user"):
            table.add_column(column, no_wrap=column != "distribution", overflow="fold")
        errors = any(p.error for p in plugins)
        if errors:
            table.add_column("error", overflow="fold", ratio=1)
        for plugin in plugins:
            loader = plugin.loader
            canvas = (f"{loader.canvas_size[0]}×{loader.canvas_size[1]}" if loader.canvas_size else "from data") \
                if loader else ""
            counts = "/".join("?" if n is None else str(n) for n in (
                loader.genuine_per_user, loader.skilled_per_user, loader.simple_per_user)) if loader else ""
            status = "[green]ok[/green]" if plugin.status == "ok" else f"[bold red]{plugin.status}[/bold red]"
            row = [console.literal(plugin.name), console.literal(plugin.distribution or ""),
                   console.literal(plugin.version or ""), status, canvas, counts]
            table.add_row(*row, *([console.literal(plugin.error or "")] if errors else []))
        console.out.print(table)
    broken = sum(p.status == "broken" for p in plugins)
    if broken:
        console.err.print(f"[yellow]{broken} dataset plugin(s) failed to load; fix or uninstall them, "
                          f"or leave them out with {ENV_VAR}[/yellow]")
    clashing = sorted({p.name for p in plugins if p.status == "duplicate"})
    if clashing:
        console.err.print(f"[yellow]{len(clashing)} dataset loader name(s) registered by more than one "
                          f"distribution, refused: {console.literal(', '.join(clashing))}; uninstall one, "
                          f"or choose with {ENV_VAR}[/yellow]")
    if not plugins:
        console.err.print(f"[yellow]no dataset loaders visible; check {ENV_VAR} or reinstall sigcli[/yellow]")


main = command(DatasetsOptions, run)
