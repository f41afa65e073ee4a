"""Bad command-line input is a usage error before anything is created: study names (a name is
also an MLflow experiment and a folder, so `/`, a leading `.` and the empty name are refused
with the rule), CPU counts, and a run folder that holds no study or is a file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from search.cli import main
from search.errors import BandsearchError
from search.studies import check_study_name


@pytest.mark.parametrize("name", ["demo", "demo 2", "band-search_v1.2", "2026.12.02"])
def test_good_names_pass(name: str) -> None:
    assert check_study_name(name) == name


@pytest.mark.parametrize("name", ["", "../escape", "x/1000", ".hidden", "..", "a\\b", "tab\tname", "ok?"])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(BandsearchError, match="letters, digits, '-', '_', '.' and spaces, not starting with '.'"):
        check_study_name(name)


@pytest.mark.parametrize("argv", [
    ["launch", "{yaml}", "--study", "../escape"],
    ["launch", "{yaml}", "--study", ""],
    ["lr-find", "{yaml}", "--study", "x/1000"],
    ["export", "../escape"],
    ["status", "x/1000"],
])
def test_the_cli_refuses_a_bad_name_before_creating_anything(argv: list[str], tiny_yaml: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([word.format(yaml=tiny_yaml) for word in argv] + ["--run-dir", str(tmp_path / "runs")])
    assert exit_.value.code == 2
    assert "not starting with '.'" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["tiny.yaml"], "no run folder, nothing outside it"


def test_a_yaml_stem_that_is_no_study_name_is_refused(tmp_path: Path, tiny_yaml: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    odd = tiny_yaml.rename(tmp_path / ".hidden.yaml")
    assert main(["launch", str(odd), "--run-dir", str(tmp_path / "runs")]) == 2
    assert "study name '.hidden'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["launch", "lr-find"])
@pytest.mark.parametrize("cpus", ["0", "-2", "two"])
def test_num_cpus_below_one_is_a_usage_error(command: str, cpus: str, tiny_yaml: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, str(tiny_yaml), "--num-cpus", cpus])
    assert exit_.value.code == 2 and "whole number of CPUs >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["export", "demo"], ["status", "demo"], ["report", "demo"], ["lr-table", "demo"],
                                  ["studies"], ["baselines", "demo"]], ids=lambda argv: argv[0])
def test_a_read_only_command_on_a_mistyped_run_dir_creates_nothing(argv: list[str], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    assert main([*argv, "--run-dir", str(runs)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"no study storage at {runs / 'optuna.journal'}" in err and "check them" in err, err
    assert os.listdir(tmp_path) == [], "no run folder, no journal, no mlflow.db"


@pytest.mark.parametrize("argv", [["status", "demo"], ["export", "demo"], ["launch", "{yaml}"]],
                         ids=lambda argv: argv[0])
def test_a_run_dir_that_is_a_file_is_one_line(argv: list[str], tiny_yaml: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "runs"
    afile.write_text("")
    assert main([word.format(yaml=tiny_yaml) for word in argv] + ["--run-dir", str(afile)]) == 2
    err = capsys.readouterr().err
    assert f"run folder {afile} (--run-dir or $BANDSEARCH_RUN_DIR) is a file; give a folder" in " ".join(err.split())
    assert "Traceback" not in err and afile.read_text() == ""
