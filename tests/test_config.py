"""Loading study YAML: every shipped space loads; every kind of bad input is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tiny_config, write_yaml

from objectives.plain import to_dict
from objectives.train.config import Target, TrainConfig, train_from_dict
from search.config import load_config
from search.errors import BandsearchError

SPACES = sorted((Path(__file__).parents[1] / "spaces").glob("*.yaml"))


@pytest.mark.parametrize("path", SPACES, ids=lambda p: p.name)
def test_every_shipped_space_loads(path: Path) -> None:
    config = load_config(path)
    assert config.bands and all(plan.space.optimizers for plan in config.bands)


def test_default_space_has_the_required_shape() -> None:
    config = load_config(Path(__file__).parents[1] / "spaces" / "audio_angle.yaml")
    assert [plan.band.center_hz for plan in config.bands] == [500, 1000, 3000]
    space = config.bands[0].space
    assert {"sgd", "adam", "adamw"} <= set(space.optimizers)
    assert {"momentum", "nesterov"} <= set(space.optimizers["sgd"])
    assert {"beta1", "beta2"} <= set(space.optimizers["adam"])
    assert "weight_decay" in space.optimizers["adamw"]
    assert {"batch_size", "warmup_epochs"} <= set(space.common)
    # alias-free for every band: spacing below half the shortest wavelength
    assert all(plan.band.high_hz < config.task.array.alias_free_hz for plan in config.bands)


def _space(**optimizer_or_common):
    return {**tiny_config()["space"], **optimizer_or_common}


BAD_INPUTS = {
    "unknown optimizer": (
        {"space": _space(optimizer={"lbfgs": {}})}, "space.optimizer.lbfgs", "unknown optimizer"),
    "unknown top-level key": ({"sapce": {}}, "sapce", "unknown top-level key"),
    "unknown task key": ({"task": {"n_trian": 5}}, "task.n_trian", "unknown key"),
    "unknown optimizer hyperparameter": (
        {"space": _space(optimizer={"adam": {"momentum": 0.9}})}, "space.optimizer.adam.momentum", "unknown key"),
    "low > high": (
        {"space": _space(lr={"low": 0.1, "high": 0.01})}, "space.lr", "low (0.1) > high (0.01)"),
    "log range with low <= 0": (
        {"space": _space(lr={"low": 0, "high": 0.1, "log": True})}, "space.lr", "log range needs low > 0"),
    "empty choices": ({"space": _space(batch_size={"choices": []})}, "space.batch_size.choices", "non-empty"),
    "band <= 0": ({"bands": [{"center_hz": 0}]}, "bands[0].center_hz", "must be > 0"),
    "band at Nyquist": ({"bands": [{"center_hz": 8000}]}, "bands[0].center_hz", "Nyquist"),
    "band above Nyquist": ({"bands": [{"center_hz": 9000}]}, "bands[0].center_hz", "Nyquist"),
    "batch larger than the training set": (
        {"space": _space(batch_size={"choices": [32, 4096]})}, "space.batch_size", "larger than the training set"),
    "band that aliases on the array": (
        {"bands": [{"center_hz": 5000}]}, "bands[0].center_hz", "alias-free"),
    "beta out of range": (
        {"space": _space(optimizer={"adam": {"beta2": {"low": 0.9, "high": 1.0}}})},
        "space.optimizer.adam.beta2", "must be in [0.0, 1.0)"),
    "unknown sampler option": (
        {"search": {"sampler": {"name": "tpe", "n_startup": 3}}}, "search.sampler.n_startup", "takes no option"),
    "TPE history below 1": (
        {"search": {"sampler": {"name": "tpe", "history": 0}}}, "search.sampler", "history: must be a whole number"),
    "unknown source kind": ({"task": {"sources": [{"kind": "wind"}]}}, "task.sources[0].kind", "unknown source"),
    "unknown room key": (
        {"task": {"sources": [{"kind": "reverberant", "rt60": [0.2, 0.4]}]}}, "task.sources[0].rt60", "unknown key"),
    "folder that is not there": (
        {"task": {"sources": [{"kind": "folder", "path": "nowhere"}]}}, "task.sources[0].path", "not a folder"),
    "unknown geometry": ({"task": {"array": {"geometry": "spiral"}}}, "task.array.geometry", "unknown geometry"),
    "unknown baseline": ({"baselines": {"methods": ["esprit"]}}, "baselines.methods", "unknown method"),
    "SVRG outer interval of 0 steps": (
        {"space": _space(optimizer={"svrg": {"interval": 0}})}, "space.optimizer.svrg.interval",
        "must be 'epoch' or a whole number of steps >= 1"),
    "SVRG outer interval range reaching below 1": (
        {"space": _space(optimizer={"svrg": {"interval": {"low": -5, "high": 50}}})},
        "space.optimizer.svrg.interval", "must be 'epoch' or a whole number of steps >= 1"),
    "switch beta1 of 1": (
        {"space": _space(optimizer={"adam_sgd": {"beta1": {"choices": [0.9, 1.0]}, "switch_epoch": 2}})},
        "space.optimizer.adam_sgd.beta1", "must be in [0.0, 1.0)"),
    "negative weight decay": (
        {"space": _space(optimizer={"sgd": {"weight_decay": {"low": -1.0e-4, "high": 1.0e-3}}})},
        "space.optimizer.sgd.weight_decay", "must be in [0.0, inf)"),
    "negative clipping norm": ({"space": _space(clip_norm=-1.0)}, "space.clip_norm", "must be > 0"),
    "clipping norm range from 0": (
        {"space": _space(clip_norm={"low": 0.0, "high": 5.0})}, "space.clip_norm", "must be > 0"),
    "switch epoch beyond the training length": (
        {"space": _space(optimizer={"adam_sgd": {"switch_epoch": {"low": 2, "high": 5}}})},
        "space.optimizer.adam_sgd.switch_epoch", "beyond the training length (training.epochs = 3)"),
    "switch epoch by default beyond a short training": (
        {"space": _space(optimizer={"adam_sgd": {}})}, "space.optimizer.adam_sgd.switch_epoch",
        "beyond the training length"),
    "unknown schedule": ({"space": _space(schedule={"linear": {}})}, "space.schedule.linear", "unknown schedule"),
    "decay factor above 1": (
        {"space": _space(schedule={"step": {"gamma": 1.5}})}, "space.schedule.step.gamma", "must be in (0.0, 1.0]"),
    "ramp longer than training": ({"space": _space(ramp_epochs=9)}, "space.ramp_epochs", "training.epochs=3"),
    "reference batch of 0": ({"space": _space(lr_reference_batch=0)}, "space.lr_reference_batch", "[1, task.n_train"),
    "target accuracy above 1": (
        {"training": {"target": {"accuracy": 1.5}}}, "training.target.accuracy", "must be a number in (0, 1]"),
    "target fraction of 0": (
        {"training": {"target": {"fraction_of_best": 0}}}, "training.target.fraction_of_best", "in (0, 1]"),
    "target in both forms": (
        {"training": {"target": {"accuracy": 0.9, "fraction_of_best": 0.9}}}, "training.target", "exactly one"),
    "target with an unknown key": (
        {"training": {"target": {"share": 0.9}}}, "training.target.share", "unknown key"),
    "target as a bare number": ({"training": {"target": 0.9}}, "training.target", "must be a mapping"),
    "the former target_accuracy": (
        {"training": {"target_accuracy": 0.8}}, "training.target_accuracy", "{accuracy: 0.8}"),
    "dynamics sampled every 0 steps": (
        {"training": {"dynamics_every": 0}}, "training.dynamics_every", "must be >= 1"),
    "per-band override with low > high": (
        {"bands": [{"center_hz": 500, "space": {"lr": {"low": 1, "high": 0.1}}}]},
        "bands[0].space.lr", "low (1) > high (0.1)"),
}


@pytest.mark.parametrize("changes,key,message", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_names_file_and_key(tmp_path: Path, changes, key, message) -> None:
    path = write_yaml(tmp_path / "bad.yaml", tiny_config(**changes))
    with pytest.raises(BandsearchError) as err:
        load_config(path)
    text = str(err.value)
    assert text.startswith(f"{path}: {key}:"), text
    assert message in text


def test_missing_file_and_broken_yaml_are_clear(tmp_path: Path) -> None:
    with pytest.raises(BandsearchError, match="cannot read the study file"):
        load_config(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("search:\n  workers: 2\n  seed: [unclosed\ntask: {}\n")
    with pytest.raises(BandsearchError) as err:
        load_config(broken)
    # The file, with the line and column where the parser gave up (the unclosed list runs into line 4).
    assert str(err.value).startswith(f"{broken}:4:5: not valid YAML:"), err.value
    assert "unicode string" not in str(err.value)


def test_numeric_strings_from_yaml_1_1_are_accepted(tmp_path: Path) -> None:
    # PyYAML reads 1e-4 (no dot) as a string; a range must still take it.
    path = tmp_path / "s.yaml"
    text = write_yaml(tmp_path / "t.yaml", tiny_config()).read_text().replace("0.0001", "1e-4")
    assert "low: 1e-4" in text
    path.write_text(text)
    assert load_config(path).bands[0].space.optimizers["adam"]["lr"].low == pytest.approx(1e-4)


def test_a_folder_source_brings_its_array_and_counts(tmp_path: Path) -> None:
    from objectives.task.config import TaskConfig
    from objectives.task.sources.folder_writer import write_synthetic

    write_synthetic(TaskConfig(clip_samples=2048), tmp_path / "recs", (4, 2), 0.5)
    task = {"clip_samples": 2048, "sources": [{"kind": "folder", "path": "recs"}]}  # relative to the YAML
    data = tiny_config(space=_space(batch_size={"choices": [4]}))
    data["task"] = task  # not merged into the tiny task: n_train and n_val come from the folder
    data["lr_finder"] = {"batch_size": 4}
    config = load_config(write_yaml(tmp_path / "f.yaml", data))
    assert config.task.array.geometry == "custom" and (config.task.n_train, config.task.n_val) == (12, 6)
    assert config.task.sources[0].path == str(tmp_path / "recs")
    path = write_yaml(tmp_path / "g.yaml", {**data, "task": {**task, "sample_rate": 8000}})
    with pytest.raises(BandsearchError, match=f"{path}: task.sample_rate: comes from the folder"):
        load_config(path)


def test_a_batch_above_a_folders_clips_asks_for_more_recordings_not_task_n_train(tmp_path: Path) -> None:
    # task.n_train is refused next to a folder source: the advice must not name it.
    from objectives.task.config import TaskConfig
    from objectives.task.sources.folder_writer import write_synthetic

    write_synthetic(TaskConfig(clip_samples=2048), tmp_path / "recs", (4, 2), 0.5)  # 12 training clips
    data = tiny_config(space=_space(batch_size={"choices": [4, 64]}))
    data["task"] = {"clip_samples": 2048, "sources": [{"kind": "folder", "path": "recs"}]}
    data["lr_finder"] = {"batch_size": 4}
    path = write_yaml(tmp_path / "f.yaml", data)
    with pytest.raises(BandsearchError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: space.batch_size: 64 is larger than the training set (12 clips); "
                              f"lower it or add recordings to the folder {tmp_path / 'recs'}")
    data["space"] = _space(batch_size={"choices": [4]})
    data["lr_finder"] = {"batch_size": 32}
    with pytest.raises(BandsearchError, match=r"lr_finder.batch_size: 32 is larger than the training set \(12 clips\); "
                       "lower it or add recordings to the folder"):
        load_config(write_yaml(tmp_path / "g.yaml", data))
    synthetic = write_yaml(tmp_path / "s.yaml", tiny_config(space=_space(batch_size={"choices": [512]})))
    with pytest.raises(BandsearchError, match=r"\(400 clips\); lower it or raise task.n_train"):
        load_config(synthetic)


def test_the_target_is_relative_by_default_or_absolute(tmp_path: Path) -> None:
    default = load_config(write_yaml(tmp_path / "d.yaml", tiny_config()))
    assert default.training.target == Target(fraction_of_best=0.9, accuracy=None)
    absolute = load_config(write_yaml(tmp_path / "a.yaml", tiny_config(training={"target": {"accuracy": 0.8}})))
    assert absolute.training.target == Target(fraction_of_best=None, accuracy=0.8)
    assert absolute.bands[0].train_config(absolute.training, {"optimizer": "adam"}).target.accuracy == 0.8


def test_a_trial_recorded_with_target_accuracy_reads_as_an_absolute_target() -> None:
    assert train_from_dict({"optimizer": "sgd", "target_accuracy": 0.7}).target == Target(None, 0.7)
    assert train_from_dict(to_dict(TrainConfig(target=Target(0.8)))).target == Target(0.8)
