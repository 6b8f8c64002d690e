"""Write synthetic signatures in a real dataset's layout and file format.

Each writer has a persistent style; genuine samples vary naturally around it; skilled
forgeries copy it with an imitator's errors (proportions off, tremor, slower and thicker
strokes); simple forgeries (brazilian) are another hand writing a name of the same length.
The dataset's loader reads the result, so it stands in for a licensed set in tests and
tutorials. The same --seed gives the same files, whatever --workers.

Example: sig synth --layout mcyt --save-path raw-mcyt --users 20
"""

from __future__ import annotations

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.data.synth import SynthOptions, run_synth


def run(options: SynthOptions) -> None:
    result = run_synth(options, console.RichReporter())
    console.out.print(result.summary(), markup=False, highlight=False, soft_wrap=True)
    console.err.print(f"[dim]next:[/dim] sig preprocess --dataset {result.layout} --raw-path "
                      f"{console.literal(result.out)} --save-path {result.layout}.npz", highlight=False, soft_wrap=True)


main = command(SynthOptions, run)
