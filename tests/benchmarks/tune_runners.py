"""The other tools of the search-efficiency benchmark, on bandsearch's own space and training loop:
Ray Tune (OptunaSearch + ASHA) and Syne Tune (ASHA, local backend). Each returns, per band, its
trials as [end time, epochs run, trial seconds, final value or None if stopped early]."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

import optuna

from objectives.task.dataset import load_or_generate
from objectives.train.loop import train
from search.config import StudyConfig

HERE = Path(__file__).parent
GRACE_EPOCHS, REDUCTION = 2, 3  # ASHA's rungs in both tools, as the median pruner's warmup


@dataclasses.dataclass
class DefineByRun:
    """A band's space as OptunaSearch's define-by-run function (picklable: Tune saves its searcher)."""

    plan: object

    def __call__(self, trial: optuna.Trial) -> None:
        self.plan.space.sample(trial)


def run_ray_tune(config: StudyConfig, seed: int, cache: Path, folder: Path) -> dict[str, list]:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    def trainable(params: dict, data=None, plan=None) -> None:
        started = time.perf_counter()

        class Report:  # the reporting seam bandsearch uses, talking to Tune instead
            def report(self, epoch: int, metrics: dict) -> None:
                tune.report({"val_accuracy": metrics["val_accuracy"], "train_seconds": time.perf_counter() - started})

        sampled = plan.space.sample(optuna.trial.FixedTrial(params))
        train(plan.train_config(config.training, sampled), data, Report(), device="cpu")

    records = {}
    epochs = config.training.epochs
    for plan in config.bands:
        data = load_or_generate(config.task, plan.band, cache, config.training.model.feature_kind)
        search = OptunaSearch(space=DefineByRun(plan), metric="val_accuracy", mode="max", seed=seed)
        scheduler = ASHAScheduler(metric="val_accuracy", mode="max", max_t=epochs, grace_period=GRACE_EPOCHS,
                                  reduction_factor=REDUCTION)
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, data=data, plan=plan), {"cpu": 1}),
            tune_config=tune.TuneConfig(search_alg=search, scheduler=scheduler,
                                        num_samples=config.search.trials_per_band,
                                        max_concurrent_trials=config.search.workers),
            run_config=tune.RunConfig(storage_path=str(folder), name=f"tune-{seed}-{plan.band.name}", verbose=0),
        )
        band = []
        for result in tuner.fit():
            frame = result.metrics_dataframe
            run = int(frame["training_iteration"].max())
            band.append([float(frame["timestamp"].iloc[-1]), run, float(frame["train_seconds"].iloc[-1]),
                         float(frame["val_accuracy"].iloc[-1]) if run == epochs else None])
        records[plan.band.name] = sorted(band)
    return records


def distributions(plan: Any) -> dict[str, optuna.distributions.BaseDistribution]:
    """Every parameter any branch of the band's space can draw (Optuna's names), found by drawing it."""
    found: dict[str, Any] = {}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(200):
        trial = study.ask()
        plan.space.sample(trial)
        found.update(trial.distributions)
        study.tell(trial, 0.0)
    return found


def from_syne(plan: Any, config: dict[str, Any]) -> dict[str, Any]:
    """A Syne Tune configuration back in Optuna's types (its choices arrive as strings)."""
    params = {}
    for name, d in distributions(plan).items():
        value = config[name]
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            params[name] = next(c for c in d.choices if str(c) == str(value))
        else:
            params[name] = int(value) if isinstance(d, optuna.distributions.IntDistribution) else float(value)
    return params


def syne_space(plan: Any) -> dict[str, Any]:
    """The band's space as Syne Tune domains, flat: a trial ignores the parameters of the branches
    it did not take."""
    from syne_tune.config_space import choice, lograndint, loguniform, randint, uniform

    domains = {}
    for name, d in distributions(plan).items():
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            domains[name] = choice([str(c) for c in d.choices])
        elif isinstance(d, optuna.distributions.IntDistribution):
            domains[name] = (lograndint if d.log else randint)(d.low, d.high)
        else:
            domains[name] = (loguniform if d.log else uniform)(d.low, d.high)
    return domains


def run_syne_tune(source: Path, data: dict, seed: int, cache: Path, folder: Path) -> dict[str, list]:
    import yaml
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.experiments import load_experiment
    from syne_tune.optimizer.baselines import ASHA

    from search.config import parse_config

    os.environ["SYNETUNE_FOLDER"] = str(folder / "syne-tune")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])
    study = folder / f"syne-{seed}.yaml"
    study.write_text(yaml.safe_dump(data, sort_keys=False))
    config = parse_config(data, source)
    epochs, budget = config.training.epochs, config.search.trials_per_band
    records = {}
    for plan in config.bands:
        load_or_generate(config.task, plan.band, cache, config.training.model.feature_kind)  # cached once
        space = {**syne_space(plan), "study": str(study), "band": plan.band.name, "cache": str(cache),
                 "source": str(source.resolve())}
        scheduler = ASHA(space, metric="val_accuracy", do_minimize=False, time_attr="epoch", max_t=epochs,
                         grace_period=GRACE_EPOCHS, reduction_factor=REDUCTION, random_seed=seed)
        tuner = Tuner(trial_backend=LocalBackend(entry_point=str(HERE / "syne_trial.py"),
                                                 binary=sys.executable, pass_args_as_json=True),
                      scheduler=scheduler, n_workers=config.search.workers,
                      stop_criterion=StoppingCriterion(max_num_trials_started=budget - 1),
                      wait_trial_completion_when_stopping=True, sleep_time=0.2,
                      tuner_name=f"syne-{seed}-{plan.band.name}", save_tuner=False)
        tuner.run()
        results = load_experiment(tuner.name).results
        band = []
        for _, trial in results.groupby("trial_id"):
            run = int(trial["epoch"].max())
            last = trial.sort_values("epoch").iloc[-1]
            band.append([float(last["st_worker_timestamp"]), run, float(last["train_seconds"]),
                         float(last["val_accuracy"]) if run == epochs else None])
        records[plan.band.name] = sorted(band)
    return records
