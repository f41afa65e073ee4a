"""Multi-objective studies (`search.objectives`): the YAML's refusals, one key each; the step time
the built-in loop reports, against its own phase timings; the Pareto front against a brute-force
dominance check; and a real launch through the CLI whose export, MLflow tags, retraining and
report figure all name the same front."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import tiny_config, write_yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from read_mlflow import dump
from test_cli import bandsearch
from test_optimizers import small_problem

from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.models import ModelConfig
from search import figures
from search.config import load_config
from search.errors import BandsearchError
from search.report import search_plots
from search.settings import Settings
from search.storage import open_storage
from search.studies import band_study_name, best_trial, pareto_front, ranked

ACCURACY_AND_STEP = [{"metric": "val_accuracy", "direction": "maximize"},
                     {"metric": "step_ms", "direction": "minimize"}]


def _untuned(**search) -> dict:
    """The tiny study without its pruner (a multi-objective study cannot have one)."""
    config = tiny_config(search=search, baselines={"methods": []})
    del config["search"]["pruner"]
    return config


@pytest.mark.parametrize(("search", "objective", "key", "message"), [
    ({"objectives": ACCURACY_AND_STEP, "pruner": "median"}, None, "search.pruner",
     "Optuna cannot prune a multi-objective study"),
    ({"objectives": ACCURACY_AND_STEP}, {"metric": "val_loss", "direction": "minimize"}, "objective.metric",
     "give them in one place"),
    ({"objectives": []}, None, "search.objectives", "must be a list of {metric, direction}"),
    ({"objectives": [{"metric": "val_accuracy", "direction": "up"}]}, None, "search.objectives[0].direction",
     "must be maximize or minimize"),
    ({"objectives": [ACCURACY_AND_STEP[0], {"metric": "step_ms", "direction": "maximize"}]}, None,
     "search.objectives[1].direction", "step_ms is better when it is lower"),
    ({"objectives": [ACCURACY_AND_STEP[0], {"metric": "flops"}]}, None, "search.objectives[1].direction",
     "required"),
    ({"objectives": [ACCURACY_AND_STEP[0], {"metric": "flops", "direction": "minimize"}]}, None,
     "search.objectives[1].metric", "the built-in loop reports no 'flops'"),
    ({"objectives": [ACCURACY_AND_STEP[0], {**ACCURACY_AND_STEP[1], "weight": 2}]}, None,
     "search.objectives[1].weight", "unknown key"),
    ({"objectives": [ACCURACY_AND_STEP[0], ACCURACY_AND_STEP[0]]}, None, "search.objectives",
     "'val_accuracy' is listed twice"),
])
def test_a_bad_objectives_list_is_refused_naming_its_key(tmp_path: Path, search, objective, key, message) -> None:
    config = _untuned(**search)
    if "pruner" in search:
        config["search"]["pruner"] = search["pruner"]
    if objective:
        config["objective"] = objective
    path = write_yaml(tmp_path / "study.yaml", config)
    with pytest.raises(BandsearchError) as err:
        load_config(path)
    assert f"{path}: {key}: " in str(err.value) and message in str(err.value)


def test_a_multi_objective_study_runs_unpruned_and_records_its_metrics(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "study.yaml", _untuned(objectives=ACCURACY_AND_STEP)))
    assert config.search.pruner == {"name": "none"}
    assert config.objective.goals == (("val_accuracy", "maximize"), ("step_ms", "minimize"))
    assert config.objective.record()["objectives"] == ACCURACY_AND_STEP
    explicit = _untuned(objectives=ACCURACY_AND_STEP)
    explicit["search"]["pruner"] = "none"
    assert load_config(write_yaml(tmp_path / "none.yaml", explicit)).search.pruner == {"name": "none"}
    single = load_config(write_yaml(tmp_path / "one.yaml", _untuned(objectives=ACCURACY_AND_STEP[:1])))
    assert not single.objective.multi and single.search.pruner["name"] == "hyperband"  # the default


def test_step_ms_is_the_wall_time_of_a_step_and_holds_its_phases() -> None:
    """Per epoch: at least the dynamics' forward + backward + update laps and SVRG's full-gradient
    pass, all inside the step loop; the epoch's steps together are epoch_seconds, and over the run
    at most the training's wall time."""
    config = TrainConfig(optimizer="svrg", lr=0.05, epochs=3, batch_size=32, dynamics_every=1,
                         model=ModelConfig(settings={"hidden": 16}))
    data = small_problem()
    result = train(config, data, device="cpu")
    steps = len(data.train_x) // config.batch_size
    for epoch in result.history:
        phases = epoch["time_forward_ms"] + epoch["time_backward_ms"] + epoch["time_update_ms"]
        assert epoch["step_ms"] >= phases + epoch["full_grad_ms"] / steps
        assert epoch["epoch_seconds"] == pytest.approx(epoch["step_ms"] * steps / 1e3)
    assert sum(epoch["epoch_seconds"] for epoch in result.history) <= result.train_seconds


def _dominated(values: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    """Maximise the first value, minimise the second: some other pair is no worse in both, better in one."""
    return any(a >= values[0] and b <= values[1] and (a, b) != values for a, b in others)


def test_the_pareto_front_is_every_undominated_trial_best_first() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"])
    distribution = {"x": FloatDistribution(0, 1)}
    # A trade-off (better accuracy costs time), a duplicate, ties on the first objective, dominated ones.
    pairs = [(0.9, 5.0), (0.8, 3.0), (0.8, 3.0), (0.8, 4.0), (0.7, 1.0), (0.6, 2.0), (0.9, 6.0), (0.5, 0.5)]
    pairs += [(a / 4, b) for a, b in itertools.product(range(3), (1.0, 2.0))]
    for pair in pairs:
        study.add_trial(create_trial(values=list(pair), params={"x": 0.5}, distributions=distribution))
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"x": 0.5}, distributions=distribution))
    expected = [n for n, pair in enumerate(pairs) if not _dominated(pair, pairs)]
    front = pareto_front(study)
    assert sorted(t.number for t in front) == expected == [0, 1, 2, 4, 7]
    assert [t.number for t in front] == [0, 1, 2, 4, 7]  # best first on accuracy, then time, then number
    assert best_trial(study).number == 0 and ranked(study)[0].number == 0  # (0.9, 5) before (0.9, 6)
    assert [t.number for t in ranked(study)][:5] == [0, 6, 1, 2, 3]


def test_a_launch_exports_tags_and_retrains_its_pareto_fronts(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "pareto.yaml", _untuned(objectives=ACCURACY_AND_STEP, trials_per_band=6))
    run_dir = str(tmp_path / "runs")
    launched = bandsearch("launch", str(path), "--study", "pareto", "--run-dir", run_dir, "--quiet",
                          "--num-cpus", "2", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    assert "Pareto front" in launched.stdout and "tags.bandsearch.pareto" in launched.stdout
    storage = open_storage(str(Path(run_dir) / "optuna.journal"))
    runs = dump(Settings.resolve(run_dir=run_dir).tracking_uri, "pareto")["runs"]
    by_id = {run["run_id"]: run for run in runs}
    assert bandsearch("export", "pareto", "--run-dir", run_dir, "--out", "best.yaml", cwd=tmp_path).returncode == 0
    document = yaml.safe_load((tmp_path / "best.yaml").read_text())
    for band in ("500", "3000"):
        study = optuna.load_study(study_name=band_study_name("pareto", band), storage=storage)
        trials = study.get_trials()
        assert len(study.directions) == 2 and len(trials) == 6
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert all(not t.intermediate_values for t in trials)  # no pruning: nothing reported to Optuna
        for trial in complete:  # each value is its run's last epoch metric of that name
            run = by_id[trial.user_attrs["mlflow_run_id"]]
            assert trial.values == [run["metrics"]["val_accuracy"][-1][1], run["metrics"]["step_ms"][-1][1]]
        pairs = [tuple(t.values) for t in complete]
        front = {t.number for t, pair in zip(complete, pairs) if not _dominated(pair, pairs)}
        exported = document["bands"][band]["pareto"]
        assert {entry["result"]["trial_number"] for entry in exported} == front
        assert document["bands"][band]["result"] == exported[0]["result"]
        tagged = {r["run_id"] for r in runs if r["tags"].get("bandsearch.pareto") == "true"
                  and r["tags"].get("bandsearch.band") == band}
        assert tagged == {trials[n].user_attrs["mlflow_run_id"] for n in front}
        plots = dict(search_plots(study))  # what `bandsearch report` draws of the band's search
        assert plots["plot_pareto_front"] == {"target_names": ["val_accuracy", "step_ms"]}
        for plot in ("plot_pareto_front", "plot_optimization_history"):  # any completed trial draws them
            drawn = figures.optuna_figure(plot, study, tmp_path / f"{plot}_{band}.png", **plots[plot])
            assert drawn is not None and drawn.stat().st_size > 0, plot
    last = len(document["bands"]["3000"]["pareto"]) - 1
    retrained = bandsearch("train", "best.yaml", "--band", "3000", "--pareto", str(last), "--run-dir", run_dir,
                           cwd=tmp_path)
    assert retrained.returncode == 0, retrained.stderr
    number = document["bands"]["3000"]["pareto"][last]["result"]["trial_number"]
    assert f"the study's trial {number}" in retrained.stdout
    beyond = bandsearch("train", "best.yaml", "--band", "3000", "--pareto", str(last + 1), "--run-dir", run_dir,
                        cwd=tmp_path)
    assert beyond.returncode != 0 and f"bands.3000.pareto: no entry {last + 1}" in beyond.stderr
    status = json.loads(bandsearch("status", "pareto", "--run-dir", run_dir, "--json", cwd=tmp_path).stdout)
    assert {(row["metric"], row["direction"], row["finished"]) for row in status} == {("val_accuracy", "maximize", 6)}
