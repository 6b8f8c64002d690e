"""Write synthetic signatures in a real dataset's layout and file format.

Each writer signs a name in a hand of their own (letter forms, slant, proportions,
flourish, tempo, pressure, pen); genuine samples vary naturally around it; skilled
forgers copy a genuine signature's shape, slowly, with a shake, pauses, blunt stroke
ends and errors of proportion and slant, with the same kind of pen; simple forgers
(brazilian) write the name in their own hand. Images are scanned at the dataset's
resolution and fit its canvas. The dataset's loader reads the result, so it stands in
for a licensed set in tests and tutorials. The same --seed gives the same files,
whatever --workers; layouts never share writers. Any dataset plugin that names
synthetic files can be written (see 'sig datasets').

Examples:
  sig synth --layout mcyt --save-path raw-mcyt --users 20
  sig synth --layout gpds --preview gpds.png        (a contact sheet, no dataset)
"""

from __future__ import annotations

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.synth import SynthOptions


def run(options: SynthOptions) -> None:
    from sigcli.data.synth import run_synth

    result = run_synth(options, console.RichReporter())
    console.out.print(result.summary(), markup=False, highlight=False, soft_wrap=True)
    if result.out is not None:
        console.err.print(f"[dim]next:[/dim] sig preprocess --dataset {result.layout} --raw-path "
                          f"{console.literal(result.out)} --save-path {result.layout}.npz", highlight=False,
                          soft_wrap=True)


main = command(SynthOptions, run)
