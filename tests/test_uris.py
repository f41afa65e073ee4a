"""What kind of URI is this: one answer for every module (search/uris.py), a clear refusal of
an unknown scheme before anything is created, passwords masked wherever a URL is shown, and
every MLflow link landing on an experiment's training runs."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from search.errors import BandsearchError
from search.settings import Settings
from search.storage import check_proxy_backend, open_storage
from search.uris import (
    StorageKind,
    TrackingKind,
    is_remote_tracking,
    journal_path,
    mask,
    needs_artifact_root,
    runs_view,
    storage_kind,
    tracking_kind,
    where_to_browse,
)

_NO_ENV = ("BANDSEARCH_RUN_DIR", "BANDSEARCH_STORAGE", "BANDSEARCH_STORAGE_PROXY", "MLFLOW_TRACKING_URI")


@pytest.fixture(autouse=True)
def _no_location_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _NO_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(("uri", "kind", "remote", "artifact_root"), [
    ("http://127.0.0.1:5000", TrackingKind.SERVER, True, False),
    ("https://mlflow.example.org", TrackingKind.SERVER, True, False),
    ("HTTPS://mlflow.example.org", TrackingKind.SERVER, True, False),
    ("databricks", TrackingKind.DATABRICKS, True, False),
    ("databricks://my-profile", TrackingKind.DATABRICKS, True, False),
    ("sqlite:////runs/mlflow.db", TrackingKind.DATABASE, False, True),
    ("postgresql://u@db/mlflow", TrackingKind.DATABASE, False, True),
    ("postgresql+psycopg2://u:p@db/mlflow", TrackingKind.DATABASE, False, True),
    ("mysql+pymysql://u@db/mlflow", TrackingKind.DATABASE, False, True),
    ("mssql://u@db/mlflow", TrackingKind.DATABASE, False, True),
    ("file:///runs/mlruns", TrackingKind.FOLDER, False, False),
    ("/runs/mlruns", TrackingKind.FOLDER, False, False),
    ("mlruns", TrackingKind.FOLDER, False, False),
])
def test_tracking_kinds(uri: str, kind: TrackingKind, remote: bool, artifact_root: bool) -> None:
    assert tracking_kind(uri) is kind
    assert is_remote_tracking(uri) is remote
    assert needs_artifact_root(uri) is artifact_root


@pytest.mark.parametrize(("url", "kind"), [
    ("/runs/optuna.journal", StorageKind.JOURNAL),
    ("runs/optuna.journal", StorageKind.JOURNAL),
    ("runs:old/optuna.journal", StorageKind.JOURNAL),  # a colon in a relative path is no scheme
    ("databricks", StorageKind.JOURNAL),  # a file of that name: the word means Databricks to MLflow only
    ("journal:///runs/optuna.journal", StorageKind.JOURNAL),
    ("sqlite:////runs/optuna.db", StorageKind.DATABASE),
    ("postgresql://u@db/optuna", StorageKind.DATABASE),
    ("postgresql+psycopg2://u:p@db/optuna", StorageKind.DATABASE),
    ("mysql://u@db/optuna", StorageKind.DATABASE),
    ("grpc://head:13000", StorageKind.PROXY),
])
def test_storage_kinds(url: str, kind: StorageKind) -> None:
    assert storage_kind(url) is kind


def test_a_journal_url_names_its_file() -> None:
    assert journal_path("journal:///runs/optuna.journal") == Path("/runs/optuna.journal")
    assert journal_path("runs/optuna.journal") == Path("runs/optuna.journal")


@pytest.mark.parametrize(("classify", "url", "forms"), [
    (storage_kind, "foo://bar/baz", "grpc://HOST:PORT"),
    (storage_kind, "http://127.0.0.1:1/optuna", "journal://PATH"),
    (storage_kind, "file:///runs/optuna.journal", "journal://PATH"),
    (storage_kind, "mssql://u@db/optuna", "postgresql|mysql"),
    (tracking_kind, "foo://bar/baz", "databricks[://PROFILE]"),
    (tracking_kind, "grpc://head:13000", "http(s)://HOST:PORT"),
])
def test_an_unknown_scheme_is_refused_naming_the_url_and_the_accepted_forms(classify, url, forms) -> None:
    with pytest.raises(BandsearchError) as err:
        classify(url)
    assert url in str(err.value) and forms in str(err.value) and "\n" not in str(err.value)


def test_the_refusal_masks_a_password() -> None:
    with pytest.raises(BandsearchError) as err:
        storage_kind("postgres://u:s3cret@db/optuna")  # SQLAlchemy's name is postgresql
    assert "s3cret" not in str(err.value) and "postgres://u:***@db/optuna" in str(err.value)


@pytest.mark.parametrize("url", ["foo://bar/baz", "http://127.0.0.1:1/optuna"])
def test_open_storage_creates_nothing_for_an_unknown_scheme(url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BandsearchError, match="unknown scheme"):
        open_storage(url)
    with pytest.raises(BandsearchError, match="unknown scheme"):
        check_proxy_backend(url)
    assert os.listdir(tmp_path) == []


def test_open_storage_still_opens_a_journal_and_sqlite(tmp_path: Path) -> None:
    open_storage(f"journal://{tmp_path / 'a' / 'optuna.journal'}")
    open_storage(f"sqlite:///{tmp_path / 'b' / 'optuna.db'}")
    assert (tmp_path / "a").is_dir() and (tmp_path / "b" / "optuna.db").exists()


def _open_in_step(folder: str, barrier, files: int) -> None:
    for i in range(files):
        barrier.wait(timeout=240)  # the first wait includes the other processes' start and imports
        open_storage(f"sqlite:///{folder}/{i}.db")


def test_processes_creating_one_sqlite_file_at_once_all_open_it(tmp_path: Path) -> None:
    """Without the lock beside the file, about half of these fail with "UNIQUE constraint failed:
    alembic_version" (a launch racing `bandsearch status`, or the tests' own readers)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    processes = [context.Process(target=_open_in_step, args=(str(tmp_path), barrier, 6)) for _ in range(3)]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=300)
        assert [process.exitcode for process in processes] == [0, 0, 0]
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


@pytest.mark.parametrize(("uri", "local"), [
    ("sqlite:///{run}/mlflow.db", True), ("postgresql://u@db/mlflow", True), ("mysql://u@db/mlflow", True),
    ("http://mlflow:5000", False), ("databricks", False), ("{run}/mlruns", False), ("file://{run}/mlruns", False),
])
def test_an_embedded_database_store_gets_an_artifact_folder_in_the_run_folder(uri: str, local: bool,
                                                                             tmp_path: Path) -> None:
    settings = Settings.resolve(run_dir=str(tmp_path), tracking_uri=uri.format(run=tmp_path))
    assert settings.artifact_root == (tmp_path.resolve() / "mlartifacts" if local else None)


def test_settings_refuse_an_unknown_scheme_before_anything_exists(tmp_path: Path) -> None:
    with pytest.raises(BandsearchError, match="the study storage foo://bar/baz"):
        Settings.resolve(run_dir=str(tmp_path / "runs"), storage="foo://bar/baz")
    with pytest.raises(BandsearchError, match="the MLflow tracking URI foo://bar/baz"):
        Settings.resolve(run_dir=str(tmp_path / "runs"), tracking_uri="foo://bar/baz")
    assert not (tmp_path / "runs").exists()


def test_launch_with_an_unknown_storage_scheme_stops_at_once(tiny_yaml: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    import ray

    from search.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")  # rich wraps at the terminal's width
    code = main(["launch", str(tiny_yaml), "--run-dir", str(tmp_path / "runs"), "--storage", "foo://bar/baz"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "foo://bar/baz" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["tiny.yaml"], "no foo: folder, no run folder"
    assert not ray.is_initialized()


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://bandsearch:s3cret@db:5432/optuna", "postgresql://bandsearch:***@db:5432/optuna"),
    ("postgresql+psycopg2://u:p@ss@db/optuna", "postgresql+psycopg2://u:***@db/optuna"),
    ("http://user:token@mlflow:5000", "http://user:***@mlflow:5000"),
    ("postgresql://db/optuna?user=u&password=s3cret&sslmode=require",
     "postgresql://db/optuna?user=u&password=***&sslmode=require"),
    ("grpc://head:13000", "grpc://head:13000"),
    ("/runs/optuna.journal", "/runs/optuna.journal"),
])
def test_passwords_are_masked(url: str, shown: str) -> None:
    assert mask(url) == shown


def test_a_link_opens_the_training_runs_of_the_experiment() -> None:
    view = "#/experiments/7?workflowType=machine_learning"
    assert runs_view("http://127.0.0.1:5000/", "7") == f"http://127.0.0.1:5000/{view}"
    assert where_to_browse("https://u:s3cret@mlflow.example.org/ml", "7") == (
        f"open https://u:***@mlflow.example.org/ml/{view}")
    assert "experiment 7 in the Databricks workspace" in where_to_browse("databricks://team", "7")


def test_a_local_store_gets_the_command_serving_it_and_then_the_link() -> None:
    shown = where_to_browse("sqlite:////my runs/mlflow.db", "3")
    assert "bandsearch ui --tracking-uri 'sqlite:////my runs/mlflow.db'" in shown
    assert "mlflow ui --backend-store-uri 'sqlite:////my runs/mlflow.db' --host 127.0.0.1" in shown
    assert shown.endswith("then open http://127.0.0.1:5000/#/experiments/3?workflowType=machine_learning")
