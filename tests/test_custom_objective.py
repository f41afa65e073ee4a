"""Your own objective (`objective: {function, metric, direction}`): bad sections are one clear
error naming the key; a function that never reports its metric fails only its trial; and the
worked example (spaces/custom_objective.*) runs through the real CLI, minimising val_loss."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from conftest import tiny_config, write_yaml
from optuna.trial import TrialState
from read_mlflow import dump
from test_cli import bandsearch

from objectives.task.dataset import BandDataset
from search.config import load_config
from search.driver.bands import open_parent_runs
from search.driver.loop import Launch
from search.errors import BandsearchError
from search.settings import Settings
from search.storage import open_storage
from search.studies import band_study_name
from search.worker import TrialJob, run_trial

SPACES = Path(__file__).parents[1] / "spaces"
GOOD = "def run(config, data, reporter):\n    return {'val_loss': 1.0}\n"


def _study_file(folder: Path, module: str, source: str, objective: dict[str, Any] | None = None,
                **changes: Any) -> Path:
    """A tiny study YAML in `folder` whose objective is `module:run`, with `module`.py beside it."""
    (folder / f"{module}.py").write_text(source)
    section = {"function": f"{module}:run", "metric": "val_loss", "direction": "minimize", **(objective or {})}
    return write_yaml(folder / "study.yaml", tiny_config(objective=section, **changes))


BAD = {
    "not importable": ("gone_objective", GOOD, {"function": "nowhere_objective:run"},
                       "objective.function", "cannot import module 'nowhere_objective'"),
    "not defined": ("undefined_objective", GOOD, {"function": "undefined_objective:train"},
                    "objective.function", "'train' in module 'undefined_objective'"),
    "not module:function": ("spec_objective", GOOD, {"function": "spec_objective.run"},
                            "objective.function", 'must be "module:function"'),
    "two parameters": ("two_objective", "def run(config, data):\n    return {}\n", {},
                       "objective.function", "two_objective:run must take (config, data, reporter)"),
    "four required parameters": ("four_objective", "def run(config, data, reporter, extra):\n    return {}\n", {},
                                 "objective.function", "must take (config, data, reporter)"),
    "unknown direction": ("direction_objective", GOOD, {"direction": "down"},
                          "objective.direction", "must be maximize or minimize, got 'down'"),
    "no direction": ("nodirection_objective", GOOD, {"direction": None}, "objective.direction", "must be"),
    "empty metric": ("metric_objective", GOOD, {"metric": " "}, "objective.metric", "must be a metric name"),
    "unknown key": ("key_objective", GOOD, {"goal": "min"}, "objective.goal", "unknown key; objective takes"),
}


@pytest.mark.parametrize("module,source,objective,key,message", BAD.values(), ids=BAD.keys())
def test_a_bad_objective_section_names_the_file_and_key(tmp_path, module, source, objective, key, message) -> None:
    path = _study_file(tmp_path, module, source, objective)
    with pytest.raises(BandsearchError) as err:
        load_config(path)
    text = str(err.value)
    assert text.startswith(f"{path}: {key}:") and message in text, text
    assert "\n" not in text


def test_lr_from_the_finder_needs_the_built_in_loop(tmp_path) -> None:
    space = {**tiny_config()["space"], "optimizer": {"adam": {"lr": {"from": "lr_finder", "factor": 4}}}}
    path = _study_file(tmp_path, "finder_objective", GOOD, space=space)
    with pytest.raises(BandsearchError, match=r"space.optimizer.adam.lr: lr: \{from: lr_finder\} needs the built-in"):
        load_config(path)


def test_without_the_section_it_is_the_built_in_loop_as_before(tmp_path) -> None:
    objective = load_config(write_yaml(tmp_path / "t.yaml", tiny_config())).objective
    assert (objective.built_in, objective.metric, objective.direction) == (True, "val_accuracy", "maximize")
    assert objective.py_modules() == []


class InProcess:
    """Runs each trial's real worker code (search/worker.py) in this process the moment it is
    submitted: Ray's four calls, without Ray, on top of real Optuna and MLflow."""

    def __init__(self):
        self.results: dict[int, Any] = {}

    def submit(self, job: TrialJob, data: Any, cpus: float, gpus: float) -> int:
        self.results[len(self.results)] = run_trial(job, data)
        return len(self.results) - 1

    def wait_one(self, pending: list[int], timeout: float | None = None) -> int | None:
        return min(pending) if pending else None

    def result(self, ref: int) -> tuple[Any, None, bool]:
        return self.results[ref], None, False

    def cancel(self, refs: list[int]) -> None:
        pass


NEVER_REPORTS = """
def run(config, data, reporter):
    if config["optimizer"] == "adam":
        return {"loss": 0.5}          # reports nothing, returns another metric
    for epoch in (1, 2):
        reporter.report(epoch, {"val_loss": 1.0 / (epoch * config["lr"])})
    return {}
"""


def _run_in_process(path: Path, study: str, tmp_path: Path, trials: list[tuple[str, float]]) -> Any:
    """Launch the study file at `path` with InProcess on a small random dataset, its trials
    enqueued as (optimizer, lr); the band it ran."""
    settings = Settings.resolve(run_dir=str(tmp_path / "runs"))
    launch = Launch(load_config(path), study, settings, runner=InProcess())
    launch.prepare()
    open_parent_runs(launch.bands, launch.tracker, launch.experiment_id, study, settings.storage_url)
    (band,) = launch.bands
    generator = torch.Generator().manual_seed(0)
    band.data = BandDataset(torch.randn(64, 3, generator=generator), torch.randint(0, 2, (64,), generator=generator),
                            torch.randn(16, 3, generator=generator), torch.randint(0, 2, (16,), generator=generator),
                            n_classes=2)
    for optimizer, lr in trials:
        band.study.enqueue_trial({"optimizer": optimizer, f"{optimizer}.lr": lr, "batch_size": 32})
    threads = torch.get_num_threads()
    try:
        launch.loop()
    finally:
        torch.set_num_threads(threads)  # the worker sets a trial's thread count in this process
    return band


def test_a_function_that_never_reports_its_metric_fails_that_trial_only(tmp_path) -> None:
    path = _study_file(tmp_path, "never_objective", NEVER_REPORTS, bands=[{"center_hz": 1000}],
                       search={"trials_per_band": 4, "workers": 1, "pruner": "none"}, baselines={"methods": []})
    band = _run_in_process(path, "never", tmp_path, [("adam", 1e-3), ("sgd", 0.1), ("adam", 1e-2), ("sgd", 0.2)])
    trials = band.study.get_trials()
    assert band.finished == 4 and band.study.direction == optuna.study.StudyDirection.MINIMIZE
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.params["optimizer"] for t in failed] == ["adam", "adam"]
    assert all("objective.metric: 'val_loss' is not among the metrics reported or returned: ['loss']"
               in t.user_attrs["fail_reason"] for t in failed)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(t.value for t in complete) == [pytest.approx(1 / (2 * 0.2)), pytest.approx(1 / (2 * 0.1))]
    assert band.best().params["sgd.lr"] == 0.2  # the lower loss, the study minimises


def test_the_built_in_loop_can_minimise_another_of_its_metrics(tmp_path) -> None:
    path = write_yaml(tmp_path / "loss.yaml", tiny_config(
        objective={"metric": "val_loss", "direction": "minimize"}, bands=[{"center_hz": 1000}],
        search={"trials_per_band": 2, "workers": 1, "pruner": "none"}, baselines={"methods": []}))
    band = _run_in_process(path, "loss", tmp_path, [("adam", 1e-3), ("adam", 1e-2)])
    trials = band.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert all(t.value == t.intermediate_values[3] for t in trials)  # the last epoch's val_loss
    assert band.best().value == min(t.value for t in trials)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_worked_example_minimises_val_loss_through_the_cli(tmp_path) -> None:
    shipped = load_config(SPACES / "custom_objective.yaml")  # the shipped file loads as it is
    assert (shipped.objective.metric, shipped.objective.direction) == ("val_loss", "minimize")
    shutil.copy(SPACES / "custom_objective.py", tmp_path / "custom_objective.py")
    objective = {"function": "custom_objective:run", "metric": "val_loss", "direction": "minimize"}
    path = write_yaml(tmp_path / "mine.yaml", tiny_config(objective=objective, baselines={"methods": []}))
    run_dir = str(tmp_path / "runs")
    launched = bandsearch("launch", str(path), "--study", "mine", "--run-dir", run_dir, "--trials", "3",
                          "--quiet", "--num-cpus", "2", cwd=tmp_path)
    assert launched.returncode == 0, launched.stderr
    assert "network val_loss" in launched.stdout
    storage = open_storage(str(Path(run_dir) / "optuna.journal"))
    settings = Settings.resolve(run_dir=run_dir)
    runs = [r for r in dump(settings.tracking_uri, "mine")["runs"] if r["tags"].get("bandsearch.role") == "trial"]
    for band in ("500", "3000"):
        study = optuna.load_study(study_name=band_study_name("mine", band), storage=storage)
        trials = study.get_trials()
        assert study.direction == optuna.study.StudyDirection.MINIMIZE
        assert len(trials) == 3 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        for trial in trials:
            last = trial.intermediate_values[max(trial.intermediate_values)]
            if trial.state == TrialState.COMPLETE:
                assert trial.value == last
            (run,) = [r for r in runs if r["run_id"] == trial.user_attrs["mlflow_run_id"]]
            assert [step for step, _ in run["metrics"]["val_loss"]] == sorted(trial.intermediate_values)
            assert run["metrics"]["val_loss"][-1][1] == pytest.approx(last)
    status = bandsearch("status", "mine", "--run-dir", run_dir, "--json", cwd=tmp_path)
    assert {(r["metric"], r["direction"], r["finished"]) for r in json.loads(status.stdout)} == {
        ("val_loss", "minimize", 3)}
    exported = bandsearch("export", "mine", "--run-dir", run_dir, "--out", "best.yaml", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    document = yaml.safe_load((tmp_path / "best.yaml").read_text())
    for band, entry in document["bands"].items():
        study = optuna.load_study(study_name=band_study_name("mine", band), storage=storage)
        lowest = min((t for t in study.get_trials() if t.state == TrialState.COMPLETE), key=lambda t: t.value)
        assert entry["result"]["val_loss"] == lowest.value and entry["result"]["trial_number"] == lowest.number
        assert entry["objective"] == {"function": "custom_objective:run", "metric": "val_loss",
                                      "direction": "minimize"}
    # What needs the built-in loop says so in one line, before any work.
    for command in (["report", "mine"], ["train", "best.yaml", "--band", "500"], ["lr-find", str(path)]):
        refused = bandsearch(*command, "--run-dir", run_dir, cwd=tmp_path)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        assert "objective.function" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    write_yaml(path, tiny_config(objective={**objective, "direction": "maximize"}, baselines={"methods": []}))
    resumed = bandsearch("launch", str(path), "--study", "mine", "--run-dir", run_dir, "--quiet", cwd=tmp_path)
    assert resumed.returncode == 2 and "was created from a different objective" in resumed.stderr



def test_the_built_in_metrics_a_study_may_optimise_are_the_ones_the_loop_reports(tmp_path: Path) -> None:
    from objectives.task.config import Band, TaskConfig
    from objectives.task.dataset import generate
    from objectives.train.config import TrainConfig
    from objectives.train.loop import train
    from objectives.train.reporter import OBJECTIVE_METRICS

    data = generate(TaskConfig(n_train=128, n_val=64, clip_samples=2048), Band("1000", 1000.0, 300.0))
    reported = train(TrainConfig(epochs=1, batch_size=32), data, device="cpu").history[0]
    assert set(OBJECTIVE_METRICS) <= set(reported)
    for objective, message in (({"metric": "val_los", "direction": "minimize"}, "objective.metric: the built-in "
                                "loop reports no 'val_los'"),
                               ({"metric": "val_loss", "direction": "maximize"}, "objective.direction: val_loss is "
                                "better when it is lower: use minimize")):
        with pytest.raises(BandsearchError) as caught:
            load_config(write_yaml(tmp_path / "o.yaml", {**tiny_config(), "objective": objective}))
        assert message in str(caught.value)
