"""The command line: a thin layer over config, runner and tracking.

    rnnbench run experiments/seed_lstm.yaml model.hidden_units=128 train.learning_rate=3e-3
    rnnbench show-config experiments/seed_lstm.yaml model.cell=gru
    rnnbench evaluate RUN_ID --data idx:/path/to/mnist
    rnnbench sweep experiments/sweep.yaml train.steps=1000 --workers 2 [--storage URL] [--dry-run] [--report]
    rnnbench sweep experiments/sweep.yaml --slurm slurm.tasks=8 [--dry-run]   # a Slurm job array; --status follows it
    rnnbench worker experiments/sweep.yaml --storage URL      # join a running sweep
    RNNBENCH_STORAGE=postgresql://me:PASSWORD@host/db rnnbench worker experiments/sweep.yaml   # a URL with a password
    rnnbench report [--experiment NAME] [--out reports/NAME/index.html]

Exit codes: 0 done, 1 the run failed (a diverged loss, a full disk; a sweep with runs it could not
do; a worker with nothing to take and no coordinator to queue more), 2 bad input (one line on stderr
naming the problem and the fix), 130 interrupted with Ctrl-C, 143 stopped by SIGTERM (the run is kept as KILLED either way).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from rnnbench import backend, faults, signals, startup
from rnnbench.config import load_config
from rnnbench.credentials import STORAGE_VARIABLE
from rnnbench.errors import UserError

EXIT_FAILED, EXIT_USAGE = 1, 2


def main(argv: list[str] | None = None) -> int:
    startup.collect_less_often()  # before a command imports MLflow, Optuna or TensorFlow
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow prints "View run ... at: <tracking URI>/#/..." for each run it closes on a server, password and all;
    # rnnbench prints its own links, without the credentials (rnnbench.credentials).
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow's database layer logs "Creating initial tables...", its connection retries, and a traceback for each failed
    # write before raising it: the error it raises is what rnnbench tells (one line for a fault), so none of that shows.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
    parser = _parser()
    args = _parse(parser, argv)
    signals.install()  # SIGTERM (docker stop, a scheduler) stops work as Ctrl-C does
    try:
        code = args.handler(args)
        if code == 0:
            signals.raise_if_received()  # a stop left pending as the last run closed FINISHED: the command still stops
        return code
    except UserError as error:
        print(f"rnnbench: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:  # outside a run (start-up, loading): nothing to record
        print(f"\nrnnbench: stopped by {signals.describe(stop)}", file=sys.stderr)
        return signals.exit_code(stop)
    except Exception as error:  # a full disk, a read-only store, a server gone: one line; anything else is a bug
        fault = faults.explain(error)
        if fault is None:
            raise
        print(f"rnnbench: error: {fault.message}", file=sys.stderr)
        return EXIT_FAILED


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments, with `key=value` overrides allowed after the options too (`sweep S --workers 2 train.steps=9`).

    argparse's own `parse_intermixed_args` does this, but not for a parser with subcommands, so the overrides it leaves
    over are added here; anything else left over is an error, as before.
    """
    args, extras = parser.parse_known_args(argv)
    overrides = [extra for extra in extras if "=" in extra and not extra.startswith("-")]
    if extras != overrides or (overrides and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def run_command(args) -> int:
    config = load_config(args.config, args.overrides)  # every key checked before any work
    from rnnbench import cost
    from rnnbench.data import load_dataset

    # A missing or damaged data source, and a model or batch that cannot fit, fail here, before MLflow and TensorFlow load.
    dataset = load_dataset(config.data)
    cost.check_fits(config.model, config.train.batch_size, len(dataset.train), config.data.task)
    from rnnbench import tracking

    tracking.open_store()  # a store that cannot be written, or a server that does not answer, fails here
    backend.load(config.train.backend)
    from rnnbench.runner import RunFailed, run_experiment

    steps = config.train.steps
    state: dict[str, Any] = {"run_id": None, "evaluations": 0}

    def started(run_id, dataset):
        state["run_id"] = run_id
        sizes = ", ".join(f"{count:,} {split}" for split, count in dataset.sizes().items())
        print(f"run {tracking.run_name(config)} ({run_id}) in experiment '{config.tracking.experiment}'")
        print(f"data {dataset.name}: {sizes} images")

    def progress(evaluation):
        state["evaluations"] += 1
        print(
            f"step {evaluation.step}/{steps}  val_loss {evaluation.val_loss:.3f}  "
            f"val_acc {evaluation.val_accuracy:.3f}  {evaluation.train_samples_per_second:,.0f} samples/s",
            flush=True,
        )

    try:
        outcome = run_experiment(config, dataset=dataset, on_start=started, on_evaluation=progress)
    except RunFailed as failure:
        print(f"rnnbench: run {failure.run_id} FAILED: {failure}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as stop:
        kept = f"run {state['run_id']} recorded as KILLED with {state['evaluations']} evaluations kept"
        print(
            f"\nrnnbench: stopped by {signals.describe(stop)}; {kept if state['run_id'] else 'no run was created'}",
            file=sys.stderr,
        )
        return signals.exit_code(stop)
    speed, test = outcome.result.speed, outcome.test
    assert test is not None  # run_experiment evaluates on the test split unless told not to
    print(
        f"test_loss {test.loss:.3f}  test_acc {test.accuracy:.4f}  "
        f"{speed.train_samples_per_second:,.0f} samples/s  compile {speed.compile_seconds:.1f}s  "
        f"training {speed.wall_seconds:.1f}s"
    )
    print(f"run id {outcome.run_id}  (store: {tracking.shown_uri()})")
    return 0


def show_config_command(args) -> int:
    print(load_config(args.config, args.overrides).to_yaml(), end="")
    return 0


def evaluate_command(args) -> int:
    from rnnbench import records

    run = records.recorded_run(args.run_id)  # before TensorFlow loads: a server that does not answer, or no such run, fails fast
    backend.load()  # a saved .keras model loads on any backend
    from rnnbench.runner import evaluate_recorded

    score, samples = evaluate_recorded(run, args.data)
    print(json.dumps({"accuracy": score.accuracy, "loss": score.loss, "samples": samples, "source": args.data}))
    return 0


def sweep_command(args) -> int:
    from rnnbench.data import split_sizes
    from rnnbench.sweep import estimate
    from rnnbench.sweep.definition import load_sweep, plan

    definition = load_sweep(args.config, args.overrides)  # every key checked before any work
    if args.status:
        from rnnbench.sweep import slurm, studies

        print(slurm.progress(definition, args.storage or str(studies.DEFAULT_STORAGE.resolve())))
        return 0
    if args.workers < 1:
        raise UserError(f"--workers: received {args.workers}, expected a positive integer")
    sizes = split_sizes(definition.data)  # a missing data folder fails here, not in every worker (and TF stays out)
    sweep_plan = plan(definition)
    estimate.check_sweep_fits(definition, sweep_plan, sizes["train"])  # before any run exists
    if args.slurm:
        return _submit_to_slurm(args, definition)
    if args.dry_run:
        print(estimate.describe(definition, sweep_plan, sizes["valid"], args.workers))
        return 0
    from rnnbench.report.summary import final_runs
    from rnnbench.sweep.coordinator import Followed, run_sweep
    from rnnbench.sweep.runs import EXIT_LOST

    try:
        code = run_sweep(definition, args.storage, args.workers, closing_summary=final_runs)
    except Followed as followed:
        if not args.join:
            raise
        from rnnbench.sweep.devices import cpu_threads

        joins = f"sweep '{followed.name}' is already followed by its coordinator {followed.owner}"
        print(f"rnnbench: {joins}: this process joins it as a worker", flush=True)
        return _work(definition.sweep.name, args.storage, cpu_threads(1), definition)
    if code in (0, EXIT_LOST) and args.report:  # a report of what was done, also when runs were lost
        args.experiment, args.out, args.ui_url = definition.sweep.name, None, None
        return report_command(args) or code
    return code


def worker_command(args) -> int:
    from rnnbench.sweep.definition import load_sweep

    sweep_file = None
    if args.sweep.endswith((".yaml", ".yml")):
        sweep_file = load_sweep(args.sweep, args.overrides)
        name = sweep_file.sweep.name
    elif args.overrides:
        raise UserError("key=value overrides need the sweep file: rnnbench worker experiments/sweep.yaml key=value ...")
    else:
        name = args.sweep
    return _work(name, args.storage, args.threads, sweep_file)


def _submit_to_slurm(args, definition) -> int:
    from pathlib import Path

    from rnnbench import tracking
    from rnnbench.sweep import slurm, studies

    storage_url = args.storage or str(studies.DEFAULT_STORAGE.resolve())
    slurm.check_shared(storage_url, tracking.tracking_uri(), definition.slurm)
    text = slurm.script(definition, Path(args.config).resolve(), args.overrides, Path.cwd().resolve())
    if args.dry_run:
        print(text, end="")
        return 0
    return slurm.submit_sweep(definition, storage_url, slurm.write_script(definition, text))


def _work(name: str, storage: str | None, threads: int, sweep_file) -> int:
    from rnnbench.sweep.worker import Abandoned, work

    try:
        ran = work(name, storage, threads, sweep_file)
    except KeyboardInterrupt as stop:
        print(
            f"rnnbench worker: stopped by {signals.describe(stop)} (a trial in progress is recorded as KILLED and re-enqueued)",
            file=sys.stderr,
        )
        return signals.exit_code(stop)
    except Abandoned as abandoned:
        print(f"rnnbench worker: {abandoned}", file=sys.stderr)
        return EXIT_FAILED
    print(f"rnnbench worker: the sweep is complete ({ran} runs here)")
    return 0


def report_command(args) -> int:
    from pathlib import Path

    from rnnbench.report.page import build_report

    built = build_report(args.experiment, Path(args.out) if args.out else None, args.ui_url)
    for figure in built.figures:
        if figure.missing:
            print(f"figure '{figure.title}' not drawn: {figure.missing}", file=sys.stderr)
    for note in built.notes:
        print(f"note: {note}")
    if built.logged_to_run:
        print(f"logged to the sweep's MLflow run {built.logged_to_run} under report/")
    print(f"report: {built.page.resolve()}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnbench", description="Compare recurrent networks on MNIST read row by row.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    overrides_help = "dotted key=value overrides, e.g. model.cell=lstm train.learning_rate=3e-3"

    run = commands.add_parser("run", help="train one configuration and record it in MLflow")
    run.add_argument("config", help="experiment YAML, e.g. experiments/seed_lstm.yaml")
    run.add_argument("overrides", nargs="*", metavar="key=value", help=overrides_help)
    run.set_defaults(handler=run_command)

    show = commands.add_parser("show-config", help="print the resolved configuration")
    show.add_argument("config", help="experiment YAML")
    show.add_argument("overrides", nargs="*", metavar="key=value", help=overrides_help)
    show.set_defaults(handler=show_config_command)

    evaluate = commands.add_parser("evaluate", help="test a logged model on a data source's test split (JSON)")
    evaluate.add_argument("run_id", help="the MLflow run id printed by `rnnbench run`")
    evaluate.add_argument("--data", required=True, help="data source: mnist5k, mnist, fashion_mnist or idx:PATH")
    evaluate.set_defaults(handler=evaluate_command)

    storage_help = (
        f"Optuna storage: an RDB URL (postgresql://user@host/db) or a journal file (default: ${STORAGE_VARIABLE}, "
        "else mlruns/optuna.journal); a URL with a password is best given in $" + STORAGE_VARIABLE
    )
    sweep = commands.add_parser("sweep", help="tune and compare the grid of a sweep file (resumable)")
    sweep.add_argument("config", help="sweep YAML, e.g. experiments/sweep.yaml")
    sweep.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.steps=1000 search.trials=4")
    sweep.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    sweep.add_argument("--storage", default=os.environ.get(STORAGE_VARIABLE) or None, help=storage_help)
    sweep.add_argument("--dry-run", action="store_true", help="print the plan and its estimated cost; run nothing")
    sweep.add_argument("--report", action="store_true", help="write the HTML report when the sweep is done (make sweep does)")
    sweep.add_argument(
        "--slurm", action="store_true", help="submit the sweep as a Slurm job array (settings: slurm.*; with --dry-run: print it)"
    )
    sweep.add_argument("--status", action="store_true", help="print the sweep's progress and its Slurm tasks; run nothing")
    sweep.add_argument(
        "--join", action="store_true", help="where a coordinator follows the sweep already, work as one of its workers instead"
    )
    sweep.set_defaults(handler=sweep_command)

    worker = commands.add_parser("worker", help="join a running sweep from another shell or machine")
    worker.add_argument("sweep", help="the sweep file (experiments/sweep.yaml) or the sweep's name")
    worker.add_argument("overrides", nargs="*", metavar="key=value", help="the overrides the sweep was started with")
    worker.add_argument("--storage", default=os.environ.get(STORAGE_VARIABLE) or None, help=storage_help)
    worker.add_argument("--threads", type=int, default=0, help="CPU threads for TensorFlow (default: all)")
    worker.set_defaults(handler=worker_command)

    report = commands.add_parser("report", help="write the HTML report of an experiment (default: the latest sweep)")
    report.add_argument("--experiment", help="MLflow experiment name (default: the latest sweep's)")
    report.add_argument("--out", help="the page's path (default: reports/<experiment>/index.html)")
    report.add_argument("--ui-url", help="the MLflow UI the run links open (default: the tracking server, else make ui's)")
    report.set_defaults(handler=report_command)
    return parser
