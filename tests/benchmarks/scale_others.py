"""The scale benchmark's comparisons: the same sleep objective, space and sampler through Optuna's
own `study.optimize(n_jobs=W)` on a journal file, and through Ray Tune with OptunaSearch."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import sleep_objective


class _OptunaReporter:
    """What the sleep objective reports to, as bandsearch's reporter would: report, then prune."""

    def __init__(self, trial):
        self.trial = trial

    def report(self, epoch: int, metrics: dict) -> None:
        import optuna

        self.trial.report(metrics["score"], epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned()


def _space_and_strategies(args):
    from scale import study_raw

    from search.config import parse_config
    from search.strategies import build_pruner, build_sampler

    raw = study_raw(1, args.trials, args.workers[0], args.epochs, "median")
    config = parse_config(raw, source=Path(__file__).with_name("scale.yaml"))
    plan = config.bands[0]
    return plan, config, build_sampler(config.search.sampler, 0), build_pruner(config.search.pruner)


def _config(plan, config, trial) -> dict:
    from objectives.plain import to_dict

    return to_dict(plan.train_config(config.training, plan.space.sample(trial)))


class _DefineByRun:
    """The band's space as OptunaSearch's define-by-run function (a class: Tune pickles it)."""

    def __init__(self, plan, config):
        self.plan, self.config = plan, config

    def __call__(self, trial) -> None:
        _config(self.plan, self.config, trial)


def cmd_optuna(args) -> list[dict]:
    """Optuna alone: study.optimize with W threads on a journal file, the same sampler and pruner."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    os.environ["SLEEP_EPOCH_SECONDS"] = str(args.epoch_seconds)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan, config, sampler, pruner = _space_and_strategies(args)
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as folder:
            storage = JournalStorage(JournalFileBackend(str(Path(folder) / "optuna.journal")))
            study = optuna.create_study(storage=storage, sampler=sampler, pruner=pruner, direction="maximize")

            def objective(trial):
                return sleep_objective.run(_config(plan, config, trial), None, _OptunaReporter(trial))["score"]

            started = time.perf_counter()
            # One trial first: Hyperband sets its brackets up at the first trial, and not thread-safely.
            study.optimize(objective, n_trials=1)
            study.optimize(objective, n_trials=args.trials - 1, n_jobs=workers)
            wall = time.perf_counter() - started
        rows.append({"kind": "optuna", "workers": workers, "trials": args.trials, "wall_s": wall,
                     "trials_per_s": args.trials / wall, "epochs": args.epochs, "epoch_seconds": args.epoch_seconds})
    return rows


def cmd_tune(args) -> list[dict]:
    """Ray Tune with OptunaSearch (the same space, as a define-by-run function, and sampler) and
    ASHA, W trials at once on a local Ray with W CPUs."""
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    plan, config, sampler, _ = _space_and_strategies(args)
    rows = []
    define = _DefineByRun(plan, config)
    for workers in args.workers:
        def trainable(params):
            import optuna
            import sleep_objective as objective

            train_config = _config(define.plan, define.config, optuna.trial.FixedTrial(params))

            class Reporter:
                def report(self, epoch, metrics):
                    tune.report(metrics)

            objective.run(train_config, None, Reporter())

        ray.init(num_cpus=workers, include_dashboard=False, runtime_env={
            "py_modules": [str(Path(sleep_objective.__file__))],
            "env_vars": {"SLEEP_EPOCH_SECONDS": str(args.epoch_seconds)}})
        try:
            search = OptunaSearch(space=define, metric="score", mode="max", sampler=sampler)
            scheduler = tune.schedulers.ASHAScheduler(metric="score", mode="max", max_t=args.epochs, grace_period=1)
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                tune.run(trainable, search_alg=search, scheduler=scheduler, num_samples=args.trials,
                         max_concurrent_trials=workers, storage_path=folder, verbose=0,
                         resources_per_trial={"cpu": 1})
                wall = time.perf_counter() - started
        finally:
            ray.shutdown()
        rows.append({"kind": "tune", "workers": workers, "trials": args.trials, "wall_s": wall,
                     "trials_per_s": args.trials / wall, "epochs": args.epochs, "epoch_seconds": args.epoch_seconds})
    return rows
