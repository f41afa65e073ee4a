"""The saved direction finder (objectives/localizer.py): from raw waveforms it gives what the
trained network gave on the cached features, after a round trip through its file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from objectives.localizer import Localizer
from objectives.task.array import ArrayConfig
from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import cache_key, load_or_generate, split_clips
from objectives.task.geometry import angle_classes
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.models import ModelConfig

TASK = TaskConfig(n_train=256, n_val=128, clip_samples=2048)
RING = TaskConfig(n_train=256, n_val=128, clip_samples=2048, n_angle_bins=12,
                  array=ArrayConfig(geometry="circular", n_mics=6, radius_m=0.035))
BAND = Band("1000", 1000.0, 300.0)


@pytest.mark.parametrize(("task", "model"), [(TASK, "mlp"), (TASK, "cnn"), (TASK, "pair_mlp"), (RING, "steered_cnn")])
def test_a_saved_localizer_gives_the_trained_networks_answers_from_waveforms(
        tmp_path: Path, task: TaskConfig, model: str) -> None:
    config = TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=2, model=ModelConfig(model))
    data = load_or_generate(task, BAND, tmp_path, config.model.feature_kind)
    result = train(config, data, device="cpu", dynamics=False)
    result.model.eval()
    with torch.no_grad():
        expected = result.model(data.val_x)
    Localizer.trained(task, BAND, config.model, result.model, data).save(tmp_path / "doa.pt")
    localizer = Localizer.load(tmp_path / "doa.pt")

    chunks = list(split_clips(task, BAND, "val", tmp_path))  # the validation clips, as waveforms
    waveforms, labels = torch.cat([c.waveforms for c in chunks]), torch.cat([c.labels for c in chunks])
    logits = torch.cat([localizer.logits(c.waveforms) for c in chunks])
    assert torch.allclose(logits, expected, atol=1e-4, rtol=1e-4)
    azimuths = localizer(waveforms)
    assert torch.equal(azimuths, angle_classes(task)[expected.argmax(dim=1)])
    accuracy = (azimuths == angle_classes(task)[labels]).double().mean().item()
    assert accuracy == pytest.approx(result.val_accuracy, abs=1e-9)


def test_a_localizer_names_the_shape_it_needs_and_refuses_other_files(tmp_path: Path) -> None:
    config = TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=1)
    data = load_or_generate(TASK, BAND, None)
    localizer = Localizer.trained(TASK, BAND, config.model, train(config, data, dynamics=False).model, data)
    with pytest.raises(ValueError, match=r"\(batch, 4 mics, samples >= n_fft 512\) at 16000 Hz, got \(2, 3, 2048\)"):
        localizer(torch.zeros(2, 3, 2048))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a localizer file"):
        Localizer.load(tmp_path / "other.pt")


def test_a_cache_without_the_standardisation_is_rebuilt_the_same(tmp_path: Path) -> None:
    data = load_or_generate(TASK, BAND, tmp_path)
    path = tmp_path / f"band-{cache_key(TASK, BAND)}.pt"
    old = {k: v for k, v in torch.load(path, weights_only=True).items() if not k.startswith("feature_")}
    torch.save(old, path)  # as written before the statistics were kept
    rebuilt = load_or_generate(TASK, BAND, tmp_path)
    assert torch.equal(rebuilt.train_x, data.train_x) and torch.equal(rebuilt.feature_mean, data.feature_mean)
    assert "feature_mean" in torch.load(path, weights_only=True)
