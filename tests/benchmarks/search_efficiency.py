"""Benchmark: is the search worth its compute? Per band, the same objective and trial budget
through each method, over many seeds; `search_efficiency_report.py` turns the records into the
README's table and figure.

    PYTHONPATH=. .venv/bin/python tests/benchmarks/search_efficiency.py [--seeds 10] [--trials 20]
        [--space spaces/audio_angle.yaml] [--model mlp] [--bands 3000,...] [--target-band 1000]
        [--search-space FILE.yaml] [--methods ...] [--out FILE.jsonl]

Methods (one launch each per seed, all bands unless said):
  tpe-median     TPE + the median pruner
  tpe-hyperband  TPE + Hyperband (epochs as the resource)
                 Each runs as two launches: the target band alone (cold), and the other bands. The
                 one with the study file's pruner is bandsearch as shipped: its launch of the other
                 bands is the source study of the next two methods, and its target band their cold
                 twin (the records of those two name it as "cold").
  random         random search, no pruning
  random-median  random search + the median pruner, and
  random-hyperband  + Hyperband: what the sampler buys against what the pruner buys
  transfer       the target band alone, started from the finished other bands of the same seed
                 (search.transfer: top 3, lr rescaled by the fitted lr(f))
  lr-seeded      the target band alone, each optimizer's lr range the lr(f) fit of the other bands
                 (x/÷ 3 around its prediction; an optimizer without a fit keeps its range)
  ray-tune       Ray Tune: OptunaSearch (TPE) + ASHA, the same space and budget
  syne-tune      Syne Tune: ASHA on its local backend (one process per trial), the same budget

Each (method, seed) appends one JSON line per band to --out: its trials in completion order as
[end time, epochs run, training seconds, final value or null if stopped early]. Training seconds
are what the trial's own loop measured (bandsearch: its MLflow run's `train_seconds`; the other
tools: the same loop's time, reported to them), one thread each, so queueing is not counted. Records already in
--out are kept and their runs skipped, so an interrupted benchmark resumes.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import ray
from _angle import model_option, study_data
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from search.config import SearchSettings, parse_config, read_yaml
from search.driver.loop import Launch
from search.lr_fit import study_fits
from search.settings import Settings
from search.storage import open_storage
from search.studies import band_study_name

ROOT = Path(__file__).parents[2]
FIGURES = Path(__file__).parent / "figures"
Record = list  # [end time, epochs, seconds, value or None]
METHODS = ("tpe-median", "tpe-hyperband", "random", "random-median", "random-hyperband", "transfer", "lr-seeded",
           "ray-tune", "syne-tune")
LR_FACTOR = 3


def _study(raw: dict, seed: int, trials: int, bands: list[str] | None = None, **search: Any) -> dict:
    """The study file's data with the seed, budget, bands and search settings given."""
    data = copy.deepcopy(raw)
    data["search"] = {**data["search"], "seed": seed, "trials_per_band": trials, **search}
    if bands is not None:
        data["bands"] = [b for b in data["bands"] if b["name"] in bands]
    data["baselines"] = {"methods": []}
    return data


def run_bandsearch(data: dict, source: Path, name: str, settings: Settings) -> dict[str, list[Record]]:
    config = parse_config(data, source)
    launch = Launch(config, name, settings)
    launch.prepare()
    launch.connect(num_cpus=2)
    launch.run()
    storage = open_storage(settings.storage_url)
    client = MlflowClient(settings.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(name).experiment_id], max_results=10_000,
                              filter_string="tags.`bandsearch.role` = 'trial'")
    seconds = {(r.data.tags["optuna.study_name"], int(r.data.tags["optuna.trial_number"])):
               r.data.metrics["train_seconds"] for r in runs}
    records = {}
    for plan in config.bands:
        study = optuna.load_study(study_name=band_study_name(name, plan.band.name), storage=storage)
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        records[plan.band.name] = sorted(
            [t.datetime_complete.timestamp(), len(t.intermediate_values), seconds[(study.study_name, t.number)],
             t.value if t.state == TrialState.COMPLETE else None] for t in trials)
    return records


def _lr_seeded(data: dict, storage_url: str, source_study: str) -> tuple[dict, list[str]]:
    """`data` with each optimizer's lr range from the source study's lr(f) fit, where it has one."""
    fits = study_fits(storage_url, source_study)
    data = copy.deepcopy(data)
    for optimizer, entries in data["space"]["optimizer"].items():
        if optimizer in fits:
            entries["lr"] = {"from": "lr_fit", "study": source_study, "factor": LR_FACTOR}
    return data, sorted(set(fits) & set(data["space"]["optimizer"]))


def _file_pruner(raw: dict) -> dict:
    return raw["search"].get("pruner") or SearchSettings().pruner


def _pruner(raw: dict, name: str) -> dict:
    """The study file's pruner where it has this one (its settings kept), else the named one's defaults."""
    return _file_pruner(raw) if _file_pruner(raw)["name"] == name else {"name": name}


def shipped_method(raw: dict) -> str:
    """The TPE method whose pruner is the study file's: bandsearch as the file configures it."""
    return f"tpe-{_file_pruner(raw)['name']}"


def bandsearch_methods(raw: dict, source: Path, seed: int, trials: int, target: str, settings: Settings,
                       wanted: set[str]) -> dict[str, dict[str, list[Record]]]:
    others = [b["name"] for b in raw["bands"] if b["name"] != target]
    out: dict[str, dict[str, list[Record]]] = {}
    shipped = shipped_method(raw)
    source_study = f"s{seed}-{shipped}-others"
    tpe = {m for m in ("tpe-median", "tpe-hyperband") if m in wanted}
    if wanted & {"transfer", "lr-seeded"}:
        tpe.add(shipped)
    for method in sorted(tpe):
        pruner = {"pruner": _pruner(raw, method.removeprefix("tpe-"))}
        out[method] = run_bandsearch(_study(raw, seed, trials, [target], **pruner), source, f"s{seed}-{method}",
                                     settings)
        if others:
            out[method].update(run_bandsearch(_study(raw, seed, trials, others, **pruner), source,
                                              f"s{seed}-{method}-others", settings))
    if "transfer" in wanted:
        transfer = {"from": {"study": source_study}, "top_k": 3, "lr_scaling": "fitted"}
        out["transfer"] = run_bandsearch(_study(raw, seed, trials, [target], transfer=transfer), source,
                                         f"s{seed}-transfer", settings)
    if "lr-seeded" in wanted:
        data, fitted = _lr_seeded(_study(raw, seed, trials, [target]), settings.storage_url, source_study)
        print(f"  lr-seeded: lr(f) ranges for {fitted}", flush=True)
        out["lr-seeded"] = run_bandsearch(data, source, f"s{seed}-lr-seeded", settings)
    variants = {"random": {"sampler": {"name": "random"}, "pruner": {"name": "none"}},
                "random-median": {"sampler": {"name": "random"}, "pruner": _pruner(raw, "median")},
                "random-hyperband": {"sampler": {"name": "random"}, "pruner": _pruner(raw, "hyperband")}}
    for method, search in variants.items():
        if method in wanted:
            out[method] = run_bandsearch(_study(raw, seed, trials, **search), source, f"s{seed}-{method}", settings)
    return out


def _done(path: Path) -> set[tuple[str, int]]:
    if not path.exists():
        return set()
    return {(row["method"], row["seed"]) for row in map(json.loads, path.read_text().splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=20, help="trials per band")
    parser.add_argument("--space", default=str(ROOT / "spaces" / "audio_angle.yaml"))
    model_option(parser)
    parser.add_argument("--bands", default="", help="comma-separated band names (default: the study file's)")
    parser.add_argument("--search-space", help="a YAML file whose content replaces the study file's space: "
                        "section (tests/benchmarks/wide_space.yaml)")
    parser.add_argument("--target-band", default="1000", help="the band transfer and lr-seeded start")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default=str(FIGURES / "search_efficiency.jsonl"))
    args = parser.parse_args()
    source, out = Path(args.space), Path(args.out)
    raw = study_data(source, args.model)
    space_name = source.name + (f" + {Path(args.search_space).name}" if args.search_space else "")
    if args.search_space:
        raw["space"] = read_yaml(Path(args.search_space), "search space")
    if args.bands:
        raw["bands"] = [band for band in raw["bands"] if band["name"] in args.bands.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.resolve(run_dir=folder)
        for seed in range(args.seeds):
            wanted = {m for m in args.methods if (m, seed) not in _done(out)}
            started = time.perf_counter()
            results = bandsearch_methods(raw, source, seed, args.trials, args.target_band, settings, wanted)
            if "ray-tune" in wanted:
                from tune_runners import run_ray_tune

                results["ray-tune"] = run_ray_tune(parse_config(_study(raw, seed, args.trials), source), seed,
                                                   settings.cache_dir, Path(folder))
            if "syne-tune" in wanted:
                from tune_runners import run_syne_tune

                results["syne-tune"] = run_syne_tune(source, _study(raw, seed, args.trials), seed,
                                                     settings.cache_dir, Path(folder))
            with out.open("a") as stream:
                for method, bands in results.items():
                    if method in wanted:
                        for band, records in bands.items():
                            record = {"method": method, "seed": seed, "band": band, "space": space_name,
                                      "model": raw["training"].get("model", {}), "trials": records}
                            if method in ("transfer", "lr-seeded"):
                                record["cold"] = shipped_method(raw)
                            stream.write(json.dumps(record) + "\n")
            print(f"seed {seed}: {sorted(wanted)} in {time.perf_counter() - started:.0f} s", flush=True)
        ray.shutdown()


if __name__ == "__main__":
    main()
