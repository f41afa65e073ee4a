"""The model table and the user's own model: every model, every optimizer, the per-frame
features, the config errors, and a study of spaces/custom_model.yaml run end to end."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from conftest import tiny_config, write_yaml
from read_mlflow import dump

from objectives.plain import to_dict
from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import BandDataset, cache_key, generate
from objectives.task.features import BandFeatures, feature_shape
from objectives.train.config import TrainConfig, train_from_dict
from objectives.train.loop import train
from objectives.train.models import MODELS, ModelConfig, build_model, model_from_dict
from objectives.train.models.frame_nets import pool_frames
from objectives.train.optim import OPTIMIZERS
from search.config import load_config, parse_config
from search.errors import BandsearchError
from search.model_check import check_models
from search.storage import open_storage

ROOT = Path(__file__).parents[1]
SPACES = ROOT / "spaces"
TASK = TaskConfig(n_train=256, n_val=128, clip_samples=2048)
BAND = Band(name="1000", center_hz=1000, width_hz=300)
CUSTOM = {"factory": "custom_nets:build", "features": "frames", "width": 16}


@pytest.fixture(scope="module")
def frames() -> BandDataset:
    return generate(TASK, BAND, features="frames")


def models() -> list[ModelConfig]:
    return [*(ModelConfig(name=name) for name in MODELS),
            model_from_dict({**CUSTOM, "code_dir": str(SPACES)})]


def test_frame_features_are_the_averaged_ones_per_frame() -> None:
    waveforms = torch.randn(3, TASK.array.n_mics, TASK.clip_samples, generator=torch.Generator().manual_seed(0))
    per_frame, averaged = BandFeatures(TASK, BAND, "frames")(waveforms), BandFeatures(TASK, BAND)(waveforms)
    mics, bins = TASK.array.n_mics, averaged.shape[1] // (3 * TASK.array.n_mics - 2)
    frames = 1 + (TASK.clip_samples - TASK.n_fft) // (TASK.n_fft // 2)
    assert per_frame.shape == (3, 3 * mics - 2, bins, frames) == (3, *feature_shape(TASK, BAND, "frames"))
    spec = BandFeatures(TASK, BAND).band_spectra(waveforms)
    cross = spec[:, 1:] * spec[:, :1].conj()  # per frame: the phase of each frame's own cross-spectrum
    assert torch.allclose(per_frame[:, mics:2 * mics - 1], torch.cos(cross.angle()), atol=1e-4)
    assert torch.allclose(per_frame[:, 2 * mics - 1:], torch.sin(cross.angle()), atol=1e-4)
    assert cache_key(TASK, BAND, "frames") != cache_key(TASK, BAND) == cache_key(TASK, BAND, "averaged")


@pytest.mark.parametrize("model", models(), ids=lambda m: m.name or "factory")
def test_every_model_gives_logits_per_clip_and_learns(model: ModelConfig, frames: BandDataset) -> None:
    data = frames if model.feature_kind == "frames" else generate(TASK, BAND, features=model.feature_kind)
    net = build_model(model, data.input_shape, data.n_classes)
    assert net(data.train_x[:5]).shape == (5, data.n_classes)
    result = train(TrainConfig(optimizer="adam", lr=1e-2, epochs=5, batch_size=32, model=model), data, device="cpu")
    losses = [epoch["train_loss"] for epoch in result.history]
    assert losses[-1] < 0.8 * losses[0] and result.val_accuracy > 2 / data.n_classes, (losses, result.val_accuracy)
    assert result.dynamics["summary.memory_params_bytes"] == 4 * sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_trains_the_users_model(optimizer: str, frames: BandDataset) -> None:
    model = model_from_dict({**CUSTOM, "code_dir": str(SPACES)})
    hyperparameters = {"switch_epoch": 2} if optimizer == "adam_sgd" else {}
    config = TrainConfig(optimizer=optimizer, lr=0.01, epochs=3, batch_size=32, model=model, clip_norm=5.0,
                         optimizer_params=hyperparameters,
                         schedule="step", schedule_params={"gamma": 0.5, "every_epochs": 1})
    config.validate(len(frames.train_x))
    history = train(config, frames, device="cpu").history
    assert len(history) == 3 and all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)


def test_the_model_round_trips_through_a_trial_record() -> None:
    model = ModelConfig(name="cnn", settings={"channels": 8})
    config = TrainConfig(model=model)
    assert to_dict(config)["model"] == {"name": "cnn", "channels": 8}
    assert train_from_dict(to_dict(config)).model == model
    assert train_from_dict({"model": {"hidden": 32, "dropout": 0.0}}).model == ModelConfig(
        name="mlp", settings={"hidden": 32, "dropout": 0.0})  # a trial recorded before the table


def _load(tmp_path: Path, model: object, space: dict | None = None) -> object:
    data = tiny_config(training={"epochs": 3, "model": model})
    data["space"].update(space or {})
    return load_config(write_yaml(tmp_path / "study.yaml", data))


@pytest.mark.parametrize(("model", "space", "message"), [
    ({"name": "transformer"}, {}, "training.model.name: unknown model 'transformer'; choose from ['cnn', 'crnn'"),
    ({"name": "cnn", "width": 3}, {}, "training.model.width: unknown setting of model cnn"),
    ({"name": "cnn", "channels": 0}, {}, "training.model.channels: must be a whole number >= 1"),
    ({"name": "mlp", "features": "frames"}, {}, "training.model.features: only with factory"),
    ({"factory": "no_such_nets:build"}, {}, "training.model.factory: cannot import module 'no_such_nets'"),
    ({"factory": "custom_nets:missing"}, {}, "training.model.factory: 'missing' in module 'custom_nets'"),
    ({"factory": "custom_nets"}, {}, 'training.model.factory: must be "module:function"'),
    ({"factory": "custom_nets:build", "features": "spectra"}, {}, "training.model.features: must be one of"),
    ({"name": "cnn"}, {"model": {"kernel": {"low": 0, "high": 3}}}, "space.model.kernel: must be a whole number >= 1"),
    ({"name": "cnn"}, {"model": {"name": {"choices": ["cnn", "mlp"]}}}, "space.model.name: the model itself"),
])
def test_a_bad_model_is_refused_naming_the_key(tmp_path: Path, model: dict, space: dict, message: str) -> None:
    shutil.copy(SPACES / "custom_nets.py", tmp_path / "custom_nets.py")
    with pytest.raises(BandsearchError) as caught:
        _load(tmp_path, model, space)
    assert f"{tmp_path / 'study.yaml'}: {message}" in str(caught.value)


@pytest.mark.parametrize(("body", "message"), [
    ("def build(shape, n_classes):\n    return torch.nn.Flatten()\n", "returns shape (2, "),
    ("def build(shape):\n    return torch.nn.Flatten()\n", "TypeError"),
    ("def build(shape, n_classes, **kw):\n    return 'a model'\n", "returned str, not a torch.nn.Module"),
])
def test_a_model_that_does_not_give_logits_is_refused_before_anything_starts(tmp_path: Path, body: str,
                                                                             message: str) -> None:
    (tmp_path / "odd_nets.py").write_text(f"import torch\n\n\n{body}")
    importlib.invalidate_caches()
    sys.modules.pop("odd_nets", None)
    config = _load(tmp_path, {"factory": "odd_nets:build"})
    with pytest.raises(BandsearchError) as caught:
        check_models(config)
    assert f"{tmp_path / 'study.yaml'}: training.model.factory: odd_nets:build" in str(caught.value)
    assert message in str(caught.value) and "(band 500)" in str(caught.value)


def test_a_space_searches_the_models_settings(tmp_path: Path) -> None:
    config = _load(tmp_path, {"name": "cnn", "channels": 8},
                   {"model": {"hidden": {"choices": [16, 32]}, "dropout": {"low": 0.0, "high": 0.3}}})
    plan = config.bands[0]
    sampled = plan.space.sample(optuna.create_study().ask())
    model = plan.train_config(config.training, sampled).model
    assert model.name == "cnn" and model.settings["channels"] == 8 and model.settings["hidden"] in (16, 32)
    assert 0.0 <= model.settings["dropout"] <= 0.3


def test_the_shipped_examples_load() -> None:
    for path in SPACES.glob("*.yaml"):
        parse_config(yaml.safe_load(path.read_text()), path)
    assert load_config(SPACES / "custom_model.yaml").training.model.code_dir == str(SPACES.resolve())


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_users_model_runs_a_study_exports_and_retrains(tmp_path: Path) -> None:
    """spaces/custom_model.yaml on tiny data, launched from another folder: the module is found
    beside the YAML and shipped to the Ray workers."""
    study_dir, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    study_dir.mkdir(), elsewhere.mkdir()
    shutil.copy(SPACES / "custom_nets.py", study_dir / "custom_nets.py")
    data = yaml.safe_load((SPACES / "custom_model.yaml").read_text())
    data["search"].update(trials_per_band=3, pruner={"name": "none"})
    data["task"].update(n_train=400, n_val=200, clip_samples=2048)
    data["training"]["epochs"] = 3
    data["space"]["optimizer"]["adam_sgd"]["switch_epoch"] = 2
    space = write_yaml(study_dir / "custom_model.yaml", data)
    run_dir = str(tmp_path / "runs")
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(ROOT)}

    def bandsearch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=elsewhere, capture_output=True,
                              text=True, env=env)

    launched = bandsearch("launch", str(space), "--study", "own", "--run-dir", run_dir, "--quiet", "--num-cpus", "2")
    assert launched.returncode == 0, launched.stderr
    for band in ("1000", "3000"):
        trials = optuna.load_study(study_name=f"own/{band}", storage=open_storage(f"{run_dir}/optuna.journal")).trials
        assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3, [t.user_attrs for t in trials]
        assert all(t.params["model.width"] in (32, 64, 128) for t in trials)
    runs = dump(f"sqlite:///{run_dir}/mlflow.db", "own")["runs"]
    runs = [r for r in runs if r["tags"].get("bandsearch.role") == "trial"]
    assert len(runs) == 6 and all(r["params"]["model.factory"] == "custom_nets:build" for r in runs)
    exported = bandsearch("export", "own", "--run-dir", run_dir, "--out", str(tmp_path / "best.yaml"))
    assert exported.returncode == 0, exported.stderr
    recorded = yaml.safe_load((tmp_path / "best.yaml").read_text())["bands"]["3000"]["result"]["val_accuracy"]
    trained = bandsearch("train", str(tmp_path / "best.yaml"), "--band", "3000", "--run-dir", run_dir)
    assert trained.returncode == 0, trained.stderr
    assert float(re.search(r"val_accuracy ([0-9.]+) \(", trained.stdout).group(1)) == pytest.approx(recorded, abs=0.02)


def test_a_node_names_the_user_code_it_cannot_import() -> None:
    from objectives.user_code import import_problems

    assert import_problems({"training.model.factory": "custom_nets_nowhere:build"}) == [
        "training.model.factory: cannot import module 'custom_nets_nowhere': put custom_nets_nowhere.py on PYTHONPATH"]


def test_a_study_recorded_before_the_model_table_resumes_and_a_changed_model_does_not(tmp_path: Path) -> None:
    from search.driver.bands import open_studies
    from search.settings import Settings
    from search.studies import SNAPSHOT

    settings = Settings.resolve(run_dir=str(tmp_path / "runs"))
    config = _load(tmp_path, {"hidden": 32})
    for _, study in open_studies(config, "old", settings, "0"):  # recorded as an earlier release did
        record = study.user_attrs[SNAPSHOT]
        study.set_user_attr(SNAPSHOT, {**record, "training": {**record["training"],
                                                              "model": {"hidden": 32, "dropout": 0.1}}})
    assert len(open_studies(config, "old", settings, "0")) == 2
    with pytest.raises(BandsearchError, match="was created from a different training"):
        open_studies(_load(tmp_path, {"hidden": 32, "dropout": 0.2}), "old", settings, "0")


@pytest.mark.parametrize("frames", [1, 4, 13, 15, 16])
@pytest.mark.parametrize("size", [1, 3, 5])
def test_pooling_frames_averages_each_run_as_torch_average_pooling_does(frames: int, size: int) -> None:
    maps = torch.randn(3, 2, 4, frames, requires_grad=True)
    ours = pool_frames(maps, size)
    torchs = torch.nn.AvgPool2d((1, size), ceil_mode=True)(maps)
    assert ours.shape == torchs.shape
    torch.testing.assert_close(ours, torchs)
    weights = torch.randn_like(ours)
    (ours_grad,) = torch.autograd.grad((ours * weights).sum(), maps)
    (torchs_grad,) = torch.autograd.grad((torchs * weights).sum(), maps)
    torch.testing.assert_close(ours_grad, torchs_grad)
