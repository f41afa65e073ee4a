"""The audio angle task: physics of the synthetic recordings, features, data cache, training."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from conftest import deterministic

from objectives.task.array import SPEED_OF_SOUND, ArrayConfig
from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import cache_key, generate, load_or_generate
from objectives.task.features import BandFeatures, band_bins
from objectives.task.geometry import plane_wave_delays
from objectives.task.synthesis import synthesize
from objectives.train.config import TrainConfig
from objectives.train.loop import train
from objectives.train.optim.schedules import SCHEDULES, warmup_then
from objectives.train.reporter import Diverged, StopTraining

SMALL = TaskConfig(n_train=600, n_val=300, clip_samples=2048)


def test_plane_wave_delays_follow_the_geometry() -> None:
    array = ArrayConfig(n_mics=4, spacing_m=0.05)
    delays = plane_wave_delays(array, torch.tensor([0.0, 90.0, 180.0]))
    assert torch.allclose(delays[1], torch.zeros(4, dtype=torch.float64), atol=1e-15)  # broadside: all mics at once
    step = 0.05 / SPEED_OF_SOUND
    # endfire from +x: the mic with the largest x hears it first, one spacing per mic earlier
    assert torch.allclose(delays[0].diff(), torch.full((3,), -step, dtype=torch.float64))
    assert torch.allclose(delays[2], -delays[0])


@pytest.mark.parametrize("center", [500.0, 3000.0])
def test_recordings_carry_the_exact_inter_mic_phase(center: float) -> None:
    task = TaskConfig(snr_db=(80.0, 80.0), clip_samples=4096)
    band = Band("b", center, 0.3 * center)
    clips = synthesize(task, band, 16, torch.Generator().manual_seed(0))
    spectrum = torch.fft.rfft(clips.waveforms.double(), dim=-1)
    freqs = torch.fft.rfftfreq(task.clip_samples, 1 / task.sample_rate)
    k = int(torch.argmin((freqs - center).abs()))
    measured = torch.angle(spectrum[:, 1, k] * spectrum[:, 0, k].conj())
    delays = plane_wave_delays(task.array, clips.angles_deg)
    expected = -2 * math.pi * freqs[k].double() * (delays[:, 1] - delays[:, 0])
    wrapped = torch.remainder(measured - expected + math.pi, 2 * math.pi) - math.pi
    assert wrapped.abs().max() < 5e-3  # float32 waveforms; the phases span radians


def test_noise_is_scaled_to_the_in_band_snr() -> None:
    task = TaskConfig(snr_db=(10.0, 10.0), clip_samples=8192)
    band = Band("b", 1000.0, 300.0)
    clean_task = TaskConfig(snr_db=(200.0, 200.0), clip_samples=8192)
    noisy = synthesize(task, band, 64, torch.Generator().manual_seed(3)).waveforms.double()
    clean = synthesize(clean_task, band, 64, torch.Generator().manual_seed(3)).waveforms.double()
    noise = noisy - clean
    freqs = torch.fft.rfftfreq(8192, 1 / task.sample_rate)
    in_band = (freqs >= band.low_hz) & (freqs <= band.high_hz)
    power = lambda x: torch.fft.rfft(x, dim=-1)[..., in_band].abs().pow(2).mean()
    snr = 10 * math.log10(power(clean) / power(noise))
    assert snr == pytest.approx(10.0, abs=0.5)


def test_features_keep_only_the_band_bins() -> None:
    band = Band("b", 1000.0, 300.0)
    bins = band_bins(SMALL, band)
    freqs = torch.fft.rfftfreq(SMALL.n_fft, 1 / SMALL.sample_rate)[bins]
    assert freqs.min() >= band.low_hz and freqs.max() <= band.high_hz
    clips = synthesize(SMALL, band, 3, torch.Generator().manual_seed(0))
    features = BandFeatures(SMALL, band)(clips.waveforms)
    n_mics = SMALL.array.n_mics
    assert features.shape == (3, (n_mics + 2 * (n_mics - 1)) * len(bins))


def test_the_baselines_see_the_frames_the_network_sees() -> None:
    from objectives.task.baselines import _stft

    band = Band("b", 1000.0, 300.0)
    clips = synthesize(SMALL, band, 2, torch.Generator().manual_seed(1))
    network = BandFeatures(SMALL, band).band_spectra(clips.waveforms)
    baselines = torch.from_numpy(_stft(clips.waveforms, SMALL.n_fft))[:, :, band_bins(SMALL, band), :]
    assert baselines.shape == network.shape
    assert torch.allclose(baselines.to(network.dtype), network, atol=1e-3 * network.abs().max().item())


def test_dataset_is_deterministic_and_cached(tmp_path) -> None:
    band = Band("b", 1000.0, 300.0)
    first, second = generate(SMALL, band), generate(SMALL, band)
    assert torch.equal(first.train_x, second.train_x) and torch.equal(first.val_y, second.val_y)
    assert first.train_x.shape[0] == 600 and first.val_x.shape[0] == 300
    cached = load_or_generate(SMALL, band, tmp_path)
    files = list(tmp_path.glob("band-*.pt"))
    assert len(files) == 1 and cache_key(SMALL, band) in files[0].name
    stamp = files[0].stat().st_mtime_ns
    again = load_or_generate(SMALL, band, tmp_path)
    assert files[0].stat().st_mtime_ns == stamp and torch.equal(again.train_x, cached.train_x)
    # any parameter that changes the data changes the key
    assert cache_key(SMALL, band) != cache_key(TaskConfig(n_train=600, n_val=300, clip_samples=2048, seed=1), band)
    assert cache_key(SMALL, band) != cache_key(SMALL, Band("b", 1000.0, 200.0))


def test_training_is_deterministic_under_a_seed() -> None:
    data = generate(SMALL, Band("b", 3000.0, 900.0))
    config = TrainConfig(optimizer="adam", lr=3e-3, epochs=3, batch_size=32, warmup_epochs=1)
    first, second = train(config, data, device="cpu"), train(config, data, device="cpu")
    assert [deterministic(e) for e in first.history] == [deterministic(e) for e in second.history]
    assert first.history[-1]["train_loss"] < first.history[0]["train_loss"]


def test_the_task_discriminates_between_bands() -> None:
    # Lower bands give smaller inter-mic phase differences: the same recipe scores lower there.
    config = TrainConfig(optimizer="adam", lr=3e-3, epochs=8, batch_size=64)
    task = TaskConfig(n_train=3000, n_val=1000)
    low = train(config, generate(task, Band("500", 500.0, 150.0)), device="cpu").val_accuracy
    high = train(config, generate(task, Band("3000", 3000.0, 900.0)), device="cpu").val_accuracy
    assert low < 0.8 and high > low + 0.15, (low, high)


def test_divergence_is_reported_not_hidden() -> None:
    data = generate(SMALL, Band("b", 1000.0, 300.0))
    with pytest.raises(Diverged) as err:
        train(TrainConfig(optimizer="sgd", lr=1e12, epochs=3, optimizer_params={"momentum": 0.9}), data, device="cpu")
    assert err.value.epoch == 1


def test_a_reporter_can_stop_training() -> None:
    class StopAtTwo:
        def report(self, epoch, metrics):
            if epoch == 2:
                raise StopTraining("enough")

    data = generate(SMALL, Band("b", 1000.0, 300.0))
    with pytest.raises(StopTraining):
        train(TrainConfig(epochs=5), data, StopAtTwo(), device="cpu")


def warmup_cosine(start: float, end: float, epochs: float, warmup_epochs: float) -> float:
    return warmup_then(SCHEDULES["cosine"].decay, start, end, epochs, warmup_epochs, 1.0, {})


def test_warmup_then_cosine() -> None:
    # 10 epochs of 10 steps, progress in epochs; 1 epoch of warmup.
    lrs = [warmup_cosine(step / 10, (step + 1) / 10, epochs=10, warmup_epochs=1) for step in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] < 0.01
    assert warmup_cosine(0, 0.1, 10, 0) == pytest.approx(1.0)


def test_objectives_never_import_the_search_stack() -> None:
    code = (
        "import sys, objectives.train.loop, objectives.task.dataset, objectives.train.optim, "
        "objectives.task.sources.rooms\n"
        "import objectives.task.sources.recordings, objectives.task.baselines, objectives.task.sources.folder_writer\n"
        "bad = [m for m in ('optuna', 'ray', 'mlflow', 'search') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_objective_runs_alone_with_python_m_objectives() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "objectives", "--center-hz", "3000", "--epochs", "2", "--n-train", "256",
         "--batch-size", "64"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [line["epoch"] for line in lines[:-1]] == [1, 2]
    assert 0 <= lines[-1]["val_accuracy"] <= 1 and lines[-1]["val_accuracy"] == lines[-2]["val_accuracy"]
