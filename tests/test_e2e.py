"""End to end, for real: local Ray, a journal-file Optuna storage, MLflow on sqlite, torch training.

One tiny study (2 bands x 4 trials) runs once per module; the tests read it back through
Optuna and, in a separate process, through MlflowClient.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import browser
import optuna
import pytest
import services
from conftest import tiny_config
from optuna.trial import TrialState

from objectives.task.dataset import load_or_generate
from objectives.train.loop import train
from search import cluster, ray_connection
from search.config import parse_config
from search.driver.launch import launch
from search.driver.loop import Launch
from search.export import best_configs, load_best_config, write_export
from search.lr_finder import stored_results
from search.lr_tables import finder_table, study_table
from search.settings import Settings
from search.storage import open_storage, serve_dashboard
from search.studies import band_study_name

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def ray_local():
    ray_connection.connect(None, num_cpus=2)
    yield
    ray_connection.disconnect()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, ray_local):
    folder = tmp_path_factory.mktemp("study")
    settings = Settings.resolve(run_dir=str(folder))
    config = parse_config(tiny_config(), source=folder / "tiny.yaml")
    bands = launch(config, "e2e", settings)
    return config, settings, bands


def _read_mlflow(settings: Settings, experiment: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE / "read_mlflow.py"), settings.tracking_uri, experiment],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def _trials(settings: Settings, study: str, band: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(settings.storage_url)
    return optuna.load_study(study_name=band_study_name(study, band), storage=storage).get_trials()


def test_each_band_meets_its_exact_budget(finished) -> None:
    config, settings, bands = finished
    for band in ("500", "3000"):
        trials = _trials(settings, "e2e", band)
        assert len(trials) == 4
        assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(band.best() is not None for band in bands)


def test_mlflow_holds_the_run_tree_linked_to_optuna(finished) -> None:
    config, settings, _ = finished
    tree = _read_mlflow(settings, "e2e")
    parents = {r["tags"]["bandsearch.band"]: r for r in tree["runs"] if r["tags"].get("bandsearch.role") == "band"}
    children = [r for r in tree["runs"] if r["tags"].get("bandsearch.role") == "trial"]
    assert set(parents) == {"500", "3000"} and len(children) == 8
    assert all(p["status"] == "FINISHED" for p in parents.values())
    for band, parent in parents.items():
        assert parent["metrics"]["best_val_accuracy"], "the parent logs the best value as trials finish"
        assert {"baseline.music.accuracy", "baseline.srp_phat.angle_error_deg"} <= set(parent["metrics"])
        assert parent["tags"]["best.mlflow_run_id"] in {c["run_id"] for c in children}
        trials = {t.number: t for t in _trials(settings, "e2e", band)}
        mine = [c for c in children if c["tags"]["mlflow.parentRunId"] == parent["run_id"]]
        assert len(mine) == 4
        for child in mine:
            trial = trials[int(child["tags"]["optuna.trial_number"])]
            assert trial.user_attrs["mlflow_run_id"] == child["run_id"]
            assert child["tags"]["optuna.study_name"] == band_study_name("e2e", band)
            assert child["tags"]["bandsearch.band"] == band
            assert {"optimizer", "lr", "batch_size", "warmup_epochs", "epochs", "model.hidden"} <= set(child["params"])
            # KILLED reads like FAILED in MLflow's run list: a pruned trial says so, right after its number.
            pruned = "pruned: diverged" if trial.user_attrs.get("stop_reason") == "diverged" else "pruned"
            mark = f" ({pruned})" if trial.state == TrialState.PRUNED else ""
            assert child["name"].startswith(f"t{trial.number:03d}{mark} {child['params']['optimizer']} lr=")
            epochs = [step for step, _ in child["metrics"]["val_accuracy"]]
            assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) == trial.last_step
            for key in ("train_loss", "val_loss", "lr", "val_angle_error_deg"):
                assert len(child["metrics"][key]) == len(epochs)
            assert child["metrics"]["val_accuracy"][-1][1] == pytest.approx(trial.intermediate_values[trial.last_step])
            expected = {TrialState.COMPLETE: "FINISHED", TrialState.PRUNED: "KILLED"}[trial.state]
            assert child["status"] == expected
            if trial.state == TrialState.COMPLETE:
                assert child["metrics"]["objective"][-1][1] == pytest.approx(trial.value)
                assert len(epochs) == config.training.epochs


def test_export_and_retrain_reproduce_the_best_trial(finished, tmp_path) -> None:
    _, settings, bands = finished
    out = tmp_path / "best.yaml"
    write_export(best_configs(settings.storage_url, "e2e"), out)
    for band in bands:
        best = load_best_config(out, band.name)
        assert best.result["val_accuracy"] == pytest.approx(band.best().value)
        data = load_or_generate(best.task, best.band, settings.cache_dir)
        result = train(best.train, data, device="cpu")
        assert result.val_accuracy == pytest.approx(best.result["val_accuracy"], abs=0.02)


def test_relaunch_resumes_to_a_larger_budget_without_duplicates(finished) -> None:
    config, settings, _ = finished
    import dataclasses

    bigger = dataclasses.replace(config, search=dataclasses.replace(config.search, trials_per_band=6))
    launch(bigger, "e2e", settings)
    for band in ("500", "3000"):
        trials = _trials(settings, "e2e", band)
        assert sorted(t.number for t in trials) == list(range(6))
        assert all(t.state != TrialState.RUNNING for t in trials)


def test_resume_with_a_different_task_is_refused(finished) -> None:
    _, settings, _ = finished
    changed = parse_config(tiny_config(task={"snr_db": [5, 6]}), source="changed.yaml")
    from search.errors import BandsearchError

    with pytest.raises(BandsearchError, match="different task"):
        Launch(changed, "e2e", settings).prepare()


def test_resume_with_the_optimizers_reordered_is_refused(finished) -> None:
    """Optuna's categorical keeps the order of its choices: a reordered space would crash the first
    ask of the resumed study ("does not support dynamic value space") instead of a clear refusal."""
    _, settings, _ = finished
    raw = tiny_config()
    raw["space"]["optimizer"] = dict(reversed(list(raw["space"]["optimizer"].items())))
    from search.errors import BandsearchError

    with pytest.raises(BandsearchError, match=r"order of choices \(\{'optimizer': \['sgd', 'adam'\]\}"):
        Launch(parse_config(raw, source="reordered.yaml"), "e2e", settings).prepare()


def test_trials_left_running_by_a_dead_driver_are_failed_and_retried(tmp_path, ray_local) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path))
    config = parse_config(tiny_config(bands=[{"center_hz": 1000}], search={"trials_per_band": 2}), source="t.yaml")
    first = Launch(config, "crash", settings)
    first.prepare()
    first.connect()
    band = first.bands[0]
    # What a killed driver leaves behind: trials RUNNING in Optuna with their MLflow runs RUNNING,
    # one submitted to Ray and one prepared for the next free worker.
    first._submit(first._prepare(band))
    (ref, submitted), = first.in_flight.items()
    cluster.cancel([ref])
    prepared = first._prepare(band)
    first.tracker.flush(force=True)  # its MLflow writer had created and linked both runs
    orphans = {flight.trial.number: first.tracker.resolve(flight.run_id) for flight in (submitted, prepared)}

    bands = launch(config, "crash", settings)
    trials = {t.number: t for t in _trials(settings, "crash", "1000")}
    runs = {r["run_id"]: r for r in _read_mlflow(settings, "crash")["runs"]}
    for number, run_id in orphans.items():
        orphan = trials[number]
        assert orphan.state == TrialState.FAIL and orphan.user_attrs["retried"] is True
        retries = [t for t in trials.values() if t.user_attrs.get("retry_of") == number]
        assert len(retries) == 1 and retries[0].params == orphan.params
        assert retries[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
        assert runs[run_id]["status"] == "FAILED" and "error.txt" in runs[run_id]["artifacts"]
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials.values()) == 2
    assert bands[0].finished == 2
    assert not [r for r in runs.values() if r["status"] == "RUNNING"]


def test_bad_trials_never_kill_the_study(tmp_path, ray_local) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path))
    space = {
        "optimizer": {
            # lr 1e12 diverges at epoch 1; Nesterov with momentum 0 is an invalid point.
            "sgd": {"lr": {"choices": [1e12, 0.05]}, "momentum": {"choices": [0.0, 0.9]}, "nesterov": True},
        },
        "batch_size": 32,
    }
    config = parse_config(
        tiny_config(bands=[{"center_hz": 1000}], space=space, search={"trials_per_band": 3, "pruner": "none"}),
        source="t.yaml",
    )
    run = Launch(config, "bad", settings)
    run.prepare()
    for lr, momentum in ((1e12, 0.9), (0.05, 0.0), (0.05, 0.9)):
        run.bands[0].study.enqueue_trial({"sgd.lr": lr, "sgd.momentum": momentum})
    (band,) = run.run()
    trials = _trials(settings, "bad", "1000")
    assert len(trials) == 3 and band.finished == 3
    diverged = [t for t in trials if t.user_attrs.get("stop_reason") == "diverged"]
    invalid = [t for t in trials if t.state == TrialState.FAIL]
    assert diverged and all(t.state == TrialState.PRUNED and t.params["sgd.lr"] == 1e12 for t in diverged)
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 1
    assert invalid and all("Nesterov momentum needs momentum > 0" in t.user_attrs["fail_reason"] for t in invalid)
    runs = _read_mlflow(settings, "bad")["runs"]
    statuses = {r["tags"].get("bandsearch.state"): r["status"]
                for r in runs if r["tags"].get("bandsearch.role") == "trial"}
    assert statuses.get("diverged") == "KILLED"
    assert not [r for r in runs if r["status"] == "RUNNING"]


def _finder_config(**lr_finder):
    space = {"optimizer": {"sgd": {"lr": {"from": "lr_finder", "factor": 4}, "momentum": 0.9},
                           "adam": {"lr": {"from": "lr_finder", "factor": 4}}},
             "batch_size": 32}
    return parse_config(
        tiny_config(bands=[{"center_hz": 1000}], space=space, search={"trials_per_band": 3},
                    lr_finder={"steps": 30, "batch_size": 32, **lr_finder}),
        source="finder.yaml",
    )


def test_a_finder_seeded_space_runs_the_range_tests_first_and_searches_around_them(tmp_path, ray_local) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path))
    launch(_finder_config(), "seeded", settings)
    results = {r["optimizer"]: r for r in stored_results(settings.storage_url)}
    assert set(results) == {"sgd", "adam"}
    for trial in _trials(settings, "seeded", "1000"):
        config = trial.user_attrs["train_config"]
        suggestion = results[config["optimizer"]]["suggestion"]
        assert suggestion / 4 <= config["lr"] <= suggestion * 4

    runs = _read_mlflow(settings, "seeded")["runs"]
    parent = next(r for r in runs if r["tags"].get("bandsearch.role") == "lr-finder")
    tests = [r for r in runs if r["tags"].get("bandsearch.role") == "lr-find"]
    assert len(tests) == 2 and all(r["tags"]["mlflow.parentRunId"] == parent["run_id"] for r in tests)
    for run in tests:
        assert {"lr_range_test.csv", "lr_range_test.png"} <= set(run["artifacts"])
        assert run["metrics"]["suggested_lr"][-1][1] == pytest.approx(results[run["params"]["optimizer"]]["suggestion"])
        assert len(run["metrics"]["range_test_loss"]) == results[run["params"]["optimizer"]]["points"]
    tables = next(r for r in runs if r["tags"].get("bandsearch.role") == "lr-tables")
    assert tables["status"] == "FINISHED" and tables["artifacts"] == ["lr_tables"]

    # A second study over the same band and model reuses the stored tests.
    before = len(stored_results(settings.storage_url))
    launch(_finder_config(), "seeded-again", settings)
    assert len(stored_results(settings.storage_url)) == before


def test_tables_report_the_finder_and_the_study(tmp_path, ray_local) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path))
    launch(_finder_config(), "tables", settings)
    finder, best = finder_table(settings.storage_url, "tables"), study_table(settings.storage_url, "tables")
    assert finder.bands == ["1000"] and set(finder.optimizers) == {"sgd", "adam"}
    trials = _trials(settings, "tables", "1000")
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    top = max(complete, key=lambda t: t.value)
    cell = best.cells[("1000", top.user_attrs["train_config"]["optimizer"])]
    assert cell.lr == top.user_attrs["train_config"]["lr"] and cell.accuracy == top.value
    assert sum(c.trials for c in best.cells.values()) <= len(trials)
    assert "| 1000 Hz |" in best.markdown() and best.csv().startswith("band,optimizer,lr")


def test_a_finder_that_diverges_at_once_stops_the_launch_with_a_clear_error(tmp_path, ray_local) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path))
    from search.errors import BandsearchError

    with pytest.raises(BandsearchError, match=r"bands 1000: space.optimizer.sgd.lr: the LR finder has no suggestion"):
        launch(_finder_config(min_lr=1e6, max_lr=1e9), "diverged", settings)
    assert not [t for t in _trials(settings, "diverged", "1000")]


needs_chromium = pytest.mark.skipif(not (browser.CHROMIUM and browser.CHROMEDRIVER),
                                    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@needs_chromium
def test_the_printed_mlflow_link_opens_the_nested_runs_and_two_trials_compare(finished, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, settings, _ = finished
    server = services.MlflowServer(settings.run_dir)  # an `mlflow server` on the study's own store
    server.start()
    try:
        shown = subprocess.run([sys.executable, "-m", "search.cli", "status", "e2e", "--run-dir", str(settings.run_dir),
                                "--tracking-uri", server.uri], capture_output=True, text=True,
                               env={**services.env(), "COLUMNS": "200"})
        assert shown.returncode == 0, shown.stderr
        link = re.search(r"MLflow: open (\S+)", shown.stdout).group(1)
        tree = _read_mlflow(settings, "e2e")
        assert link == f"{server.uri}/#/experiments/{tree['experiment_id']}?workflowType=machine_learning"
        trials = [r for r in tree["runs"] if r["tags"].get("bandsearch.role") == "trial"]
        with browser.chromium() as page:
            body = lambda: page.find_element(By.TAG_NAME, "body").text
            page.get(link)
            # What shows first is the runs table, each band's parent run with its trials folded under it.
            WebDriverWait(page, 90).until(lambda _: all(text in body() for text in ("Run Name", "band 500 Hz",
                                                                                     "band 3000 Hz")))
            page.save_screenshot(str(tmp_path / "mlflow_runs.png"))
            for expander in page.find_elements(By.CSS_SELECTOR, "button[data-component-id*='runnamecellrenderer']"):
                expander.click()
            WebDriverWait(page, 30).until(lambda _: all(r["name"] in body() for r in trials))
            page.save_screenshot(str(tmp_path / "mlflow_runs_unfolded.png"))
            compared = trials[:2]
            page.get(f"{server.uri}/#/compare-runs?runs={json.dumps([r['run_id'] for r in compared])}"
                     f"&experiments={json.dumps([tree['experiment_id']])}")
            WebDriverWait(page, 60).until(lambda _: "Comparing 2 Runs" in body()
                                          and all(r["name"] in body() for r in compared))
            page.save_screenshot(str(tmp_path / "mlflow_compare.png"))
        assert all((tmp_path / png).stat().st_size > 10_000
                   for png in ("mlflow_runs.png", "mlflow_runs_unfolded.png", "mlflow_compare.png"))
    finally:
        server.stop()


@needs_chromium
def test_optuna_dashboard_lists_the_band_studies(finished, tmp_path) -> None:
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (pyproject's test extra has it)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, settings, _ = finished
    port = services.free_port()
    dashboard = serve_dashboard(settings.storage_url, "127.0.0.1", port)
    try:
        browser.wait_for_http(f"http://127.0.0.1:{port}/")
        with browser.chromium() as page:
            page.get(f"http://127.0.0.1:{port}/dashboard")
            body = lambda: page.find_element(By.TAG_NAME, "body").text
            WebDriverWait(page, 60).until(lambda _: band_study_name("e2e", "500") in body())
            page.save_screenshot(str(tmp_path / "optuna_dashboard.png"))
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_the_report_reruns_the_best_configs_and_lands_in_mlflow(finished, tmp_path) -> None:
    from search.report import write_report

    _, settings, _ = finished
    report = write_report(settings, "e2e", seeds=2, out=tmp_path / "report")
    text = report.read_text()
    for section in ("Final validation accuracy", "Epochs to the target: 90% of the best validation accuracy",
                    "median epochs (Kaplan–Meier)", "Gradient norm", "Cosine similarity", "Optimisation path",
                    "Memory and time per step", "Per-frequency learning-rate tables", "band 500 Hz",
                    "## Seed findings", "**(e) Gradient-direction consistency"):
        assert section in text
    assert "±" in text
    for png in ("accuracy.png", "grad_norm.png", "optimization_history_500.png"):
        assert (tmp_path / "report" / png).stat().st_size > 5_000 and f"({png})" in text
    runs = _read_mlflow(settings, "e2e")["runs"]
    logged = next(r for r in runs if r["tags"].get("bandsearch.role") == "report")
    assert logged["status"] == "FINISHED" and logged["artifacts"] == ["report"]
