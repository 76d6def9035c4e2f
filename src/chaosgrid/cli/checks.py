"""Checks of the user's own code before a study uses it: a model (check-model), a trainer (check-trainer)."""

from __future__ import annotations

import click

from chaosgrid.cells import SEED_KEYS, GridError
from chaosgrid.cli.options import (
    data_root_option,
    dataset_option,
)
from chaosgrid.evalsets import CLEAN


@click.command("check-model")
@click.argument("model")
@dataset_option
@click.option("--width", type=click.IntRange(1), default=8, show_default=True)
@data_root_option
def check_model(model, dataset, width, data_root) -> None:
    """Check a model (built-in, or your own package.module:function) before a grid uses it: its parameters
    and FLOPs per example, whether vmap stacks it, and whether K=3 runs stepped together equal each alone
    (two steps in float64, on each engine it can run on)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from chaosgrid import data, engine, recipe, train
    from chaosgrid.cells import validate_cell

    torch.set_num_threads(1)
    try:
        cells = [
            validate_cell(
                {
                    "model": model,
                    "dataset": dataset,
                    "width": width,
                    "epochs": 1,
                    "batch_size": 8,
                    "warmup": 0,
                    "init_seed": i,
                    "order_seed": i,
                    "aug_seed": i,
                }
            )
            for i in range(3)
        ]
        ds = data.load(dataset, data_root)
        one = train.init_model(cells[0], ds.normalize(ds.x_train[:64]), ds.num_classes)
    except (GridError, ValueError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from err
    x = ds.normalize(ds.x_train[:16]).double()
    y = ds.y_train[:16]
    with FlopCounterMode(display=False) as flops:
        one.eval()(ds.normalize(ds.x_train[:1]))
    click.echo(
        f"{model} on {dataset} (width {width}, {ds.num_classes} classes, inputs {tuple(x.shape[1:])}): "
        f"{sum(p.numel() for p in one.parameters()):,} parameters, "
        f"{flops.get_total_flops() / 1e6:.2f} MFLOP per example (forward)"
    )
    draws = train.random_draws(one, ds.normalize(ds.x_train[:4]))
    own = " (each run draws from its own seed, on the loop engine)"
    click.echo(f"random draws: {', '.join(draws) + own if draws else 'none'}")
    why = train.unstackable(cells[0], ds)
    click.echo(f"vmap: {'stacks it' if not why else 'cannot stack it (' + why + '); shards use the loop'}")
    failed = False
    for name in ["loop"] + (["vmap"] if not why else []):
        execution = engine.Execution(name)
        together = train.build_stack(cells, x, ds.num_classes, execution)
        recipe.fit(together, cells, x, y, execution)
        worst = 0.0
        for r, cell in enumerate(cells):
            alone = train.build_stack([cell], x, ds.num_classes, execution)
            recipe.fit(alone, [cell], x, y, execution)
            pairs = zip(together.state_dicts()[r].values(), alone.state_dicts()[0].values(), strict=True)
            worst = max(worst, max(float((a.double() - b.double()).abs().max()) for a, b in pairs))
        ok = worst <= 1e-10
        failed |= not ok
        click.echo(
            f"{name}: 3 runs together {'equal' if ok else 'DIFFER from'} each run alone (max |difference| "
            f"{worst:.1e} after 2 steps, float64)"
        )
    if failed:
        raise click.ClickException(
            "runs trained together influence each other: state shared across the stack "
            "(a module-level tensor, buffer or RNG of its own that runs share)"
        )


@click.command("check-trainer")
@click.argument("trainer")
@dataset_option
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter or own key of the run (repeat), e.g. --set hidden=16; values read as YAML.",
)
@data_root_option
def check_trainer(trainer, dataset, settings, data_root) -> None:
    """Check your own trainer (package.module:function, or 'command:...') before a grid uses it: run one run
    twice with equal seeds and once with other seeds, and say whether the predictions are equal, then
    different (the trainer must make its runs from the seeds it is given), and that its output keeps the
    contract (chaosgrid.trainers)."""
    import numpy as np
    import torch
    import yaml

    from chaosgrid import data, evalsets, shifts, trainers
    from chaosgrid.cells import validate_cell

    torch.set_num_threads(1)
    params = {"trainer": trainer, "dataset": dataset}
    for setting in settings:
        key, sep, value = setting.partition("=")
        if not sep:
            raise click.BadParameter(f"{setting!r} is not KEY=VALUE", param_hint="--set")
        params[key] = yaml.safe_load(value)
    try:
        cell = validate_cell(params)
        ds = data.load(dataset, data_root)
        sets = shifts.eval_sets(ds, evalsets.eval_pairs([], []))
        other = validate_cell({**params, **{key: cell[key] + 1 for key in SEED_KEYS}})
        first, second, third = (trainers.train_runs([c], ds, sets)[0] for c in (cell, cell, other))
    except (GridError, ValueError, FileNotFoundError, trainers.TrainerError) as err:
        raise click.ClickException(str(err)) from err
    equal = lambda a, b: (
        np.array_equal(a.evals[CLEAN].pred, b.evals[CLEAN].pred)
        and np.array_equal(a.evals[CLEAN].p_true, b.evals[CLEAN].p_true)
    )
    same, moved = equal(first, second), not equal(first, third)
    click.echo(
        f"{trainer} on {dataset}: the contract holds (test accuracy {first.evals[CLEAN].acc:.4f}); "
        f"two runs with equal seeds give {'equal' if same else 'DIFFERENT'} predictions; a run with other "
        f"seeds gives {'different' if moved else 'the SAME'} predictions"
    )
    if not same:
        raise click.ClickException(
            "the trainer does not make its runs from the seeds it is given (init_seed, "
            "order_seed, aug_seed): runs cannot be reproduced, nor seeds told apart"
        )
    if not moved:
        raise click.ClickException(
            "the trainer ignores the seeds it is given (init_seed, order_seed, aug_seed): "
            "every seed makes the same run, so a study would report a run-to-run std of 0"
        )
