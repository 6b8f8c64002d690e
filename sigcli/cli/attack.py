"""Attack a signature network with adversarial examples (projected gradient descent, L2-bounded).

--system classifier (default): every signature of --users is perturbed, within --max-l2,
until the checkpoint's user classifier assigns it to another user (or, --targeted, to a
random other user). Writes the adversarial images as a signature set (150×220 float in
[0, 1]) and OUT.json (success rate, L2 norms, options, versions).

--system wd: a writer-dependent verification system (the checkpoint's features + one SVM per
user, fitted as 'sig wd' fits them) is attacked at each L2 budget of --budgets: genuine
signatures made to be rejected (Type I), skilled and random forgeries made to be accepted
(Type II). Writes OUT.json: success rate per budget and the median L2 of the successful
perturbations; 'sig report' plots several of them against the budget.

Example: sig attack --model-path model_best.pth --data-path gpds.npz --users 350 881 --max-l2 5 --save-path adv.npz

Example: sig attack --system wd --model-path model_best.pth --data-path gpds.npz --budgets 1,2,5,10 --save-path wd_attack.json
"""

from __future__ import annotations

import dataclasses
import json

from rich.table import Table

from sigcli.cli import console
from sigcli.cli.derive import command
from sigcli.config.attack import AttackOptions


def run(options: AttackOptions) -> None:
    if options.system == "wd":
        from sigcli.adversarial.wd import attack_wd

        report = attack_wd(options, console.RichReporter())
        if options.as_json:
            console.out.print_json(json.dumps(report, default=str))
        else:
            console.out.print(wd_table(report))
        return
    from sigcli.adversarial.classifier import attack_classifier

    result = attack_classifier(options, console.RichReporter())
    if options.as_json:
        console.out.print_json(json.dumps(dataclasses.asdict(result), default=str))
        return
    table = console.facts_table(f"adversarial images: {console.literal(result.save_path)}")
    table.add_row("images", f"{result.images} of {result.users} users")
    table.add_row("accuracy", f"{100 * result.clean_accuracy:.1f}% clean → {100 * result.adversarial_accuracy:.1f}% "
                              "attacked")
    rate = "–" if result.success_rate is None else f"{100 * result.success_rate:.1f}%"
    table.add_row("success rate", f"{rate} of the correctly classified images")
    table.add_row("L2", "  ".join(f"{k} {v:.3g}" for k, v in result.l2.items()) + f"  (budget {options.max_l2:g})")
    table.add_row("time", f"{result.seconds:.1f} s on {result.device}")
    console.out.print(table)


def wd_table(report: dict) -> Table:
    """A row per budget, a column per kind of attack: success rate (median L2 of the successes)."""
    attacks = report["attacks"]
    table = Table(title=f"attacks on the WD system: {console.literal(report['save_path'])}")
    table.add_column("L2 budget", justify="right")
    for attack in attacks.values():
        table.add_column(attack["name"], justify="right")
    table.add_row("none (error)", *("–" if a["clean_error"] is None else f"{100 * a['clean_error']:.1f}%"
                                    for a in attacks.values()), end_section=True)
    for k, budget in enumerate(report["budgets"]):
        cells = []
        for attack in attacks.values():
            rate, median = attack["success_rate"][k], attack["median_l2"][k]
            cells.append("–" if rate is None else f"{100 * rate:.1f}%" + ("" if median is None else f" ({median:.3g})"))
        table.add_row(f"{budget:g}", *cells)
    table.caption = ("success rate among the signatures decided right without attack (median L2 of the successful "
                     "perturbations); Type I: genuine made to be rejected; Type II: forgery made to be accepted")
    return table


main = command(AttackOptions, run)
