"""Steered responses against first principles (exact tones at known angles) and against
pyroomacoustics' own SRP-PHAT and MUSIC (the direction each picks from the same clip)."""

from __future__ import annotations

import math

import numpy as np
import pyroomacoustics as pra
import pytest
import torch

from objectives.task.array import SPEED_OF_SOUND, ArrayConfig
from objectives.task.config import Band, TaskConfig
from objectives.task.features import BandFeatures
from objectives.task.steered import circle_angles
from objectives.train.models.steered_cnn import CircularConv, SteeredResponseCNN

ARRAYS = {"linear": ArrayConfig(), "circular": ArrayConfig(geometry="circular", n_mics=6, radius_m=0.035)}
BANDS = [Band("500", 500, 150), Band("1000", 1000, 300), Band("3000", 3000, 900)]
N_CLASSES = {"linear": 18, "circular": 36}  # 10-degree classes over each array's span


def steered(geometry: str, band: Band) -> tuple[TaskConfig, BandFeatures, np.ndarray, np.ndarray]:
    """The task of 10-degree classes on `geometry`, its steered features, the band's bins and their Hz."""
    task = TaskConfig(array=ARRAYS[geometry], n_angle_bins=N_CLASSES[geometry])
    extract = BandFeatures(task, band, "steered")
    bins = extract.bins.numpy()
    return task, extract, bins, bins * task.sample_rate / task.n_fft


def tones(task: TaskConfig, freqs: np.ndarray, angle_deg: float, rng: np.random.Generator) -> torch.Tensor:
    """One tone per frequency, random amplitude and phase, each mic's copy early by p·u / c."""
    theta = math.radians(angle_deg)
    lead = np.array(task.array.positions()) @ np.array([math.cos(theta), math.sin(theta)]) / SPEED_OF_SOUND
    t = np.arange(task.clip_samples) / task.sample_rate
    amp, phase = rng.uniform(0.5, 1.5, freqs.size), rng.uniform(0, 2 * math.pi, freqs.size)
    arg = 2 * math.pi * freqs[None, :, None] * (t[None, None, :] + lead[:, None, None]) + phase[None, :, None]
    return torch.tensor((amp[None, :, None] * np.cos(arg)).sum(axis=1), dtype=torch.float32)


@pytest.mark.parametrize("geometry", sorted(ARRAYS))
@pytest.mark.parametrize("band", BANDS, ids=lambda band: band.name)
def test_a_tone_from_a_class_centre_peaks_there_in_every_bin(geometry: str, band: Band) -> None:
    # Tones on every other bin centre (the Hann window's spectrum is zero two bins away): each
    # bin's frames are one plane wave, so SRP-PHAT is exactly 1 at its direction (at most 1
    # anywhere) and MUSIC's noise subspace is orthogonal to its steering vector.
    task, extract, bins, freqs = steered(geometry, band)
    directions = circle_angles(task.class_width_deg).numpy()
    assert directions.size == 36 and np.allclose(directions[: task.n_angle_bins], (np.arange(task.n_angle_bins) + 0.5)
                                                 * task.class_width_deg)
    rng = np.random.default_rng(0)
    for truth in (0, 7, 13, task.n_angle_bins - 1):
        on = bins % 2 == 0
        x = extract(tones(task, freqs[on], directions[truth], rng)[None])[0].double().numpy()[:, on]
        srp, music = x
        assert srp.shape == (on.sum(), 36)
        assert np.allclose(srp[:, truth], 1.0, atol=1e-3) and srp.max() <= 1.0 + 1e-3
        assert (music[:, truth] > 9).all()  # |E_n^H a|^2 / |a|^2 < 1e-4
        mirror = (36 - 1 - truth) % 36  # on a line, the direction reflected in the x axis looks the same
        expected = {truth, mirror} if geometry == "linear" else {truth}
        assert set(srp.argmax(axis=1)) <= expected and set(music.argmax(axis=1)) <= expected


@pytest.mark.parametrize("geometry", sorted(ARRAYS))
@pytest.mark.parametrize("band", BANDS, ids=lambda band: band.name)
def test_summed_over_bins_they_pick_the_direction_pyroomacoustics_picks(geometry: str, band: Band) -> None:
    # Noisy clips (a tone mixture from a random direction plus independent noise at each mic):
    # SRP-PHAT summed over the band's bins, and MUSIC's 1 / |E_n^H a|^2 summed, peak at the same
    # grid direction as pyroomacoustics' SRP and MUSIC on the same STFT frames.
    task, extract, bins, freqs = steered(geometry, band)
    grid = np.radians(circle_angles(task.class_width_deg).numpy())
    rng = np.random.default_rng(1)
    picked = {"srp": [], "music": []}
    expected = {"srp": [], "music": []}
    for _ in range(12):
        clean = tones(task, freqs + rng.uniform(-5, 5, freqs.size), rng.uniform(0, 360), rng)
        clip = clean + 0.7 * clean.std() * torch.randn(clean.shape, generator=torch.Generator().manual_seed(len(
            picked["srp"])))
        srp, music = extract(clip[None])[0].double().numpy()
        picked["srp"].append(srp.sum(axis=0).argmax())
        picked["music"].append(np.exp(music).sum(axis=0).argmax())
        spectrum = extract.band_spectra(clip[None])[0].to(torch.complex128).numpy()  # (mics, bins, frames)
        full = np.zeros((task.array.n_mics, task.n_fft // 2 + 1, spectrum.shape[-1]), dtype=complex)
        full[:, bins] = spectrum
        for method, name in (("srp", "SRP"), ("music", "MUSIC")):
            locator = pra.doa.algorithms[name](np.array(task.array.positions()).T, task.sample_rate, task.n_fft,
                                               c=SPEED_OF_SOUND, num_src=1, azimuth=grid)
            locator.locate_sources(full, freq_bins=bins)
            expected[method].append(int(np.argmin(np.abs(np.angle(np.exp(1j * (grid - locator.azimuth_recon[0])))))))
    def folded(indices: list[int]) -> np.ndarray:  # on a line, a direction and its mirror are one
        indices = np.array(indices)
        return np.minimum(indices, 35 - indices) if geometry == "linear" else indices

    for method in picked:
        agree = np.mean(folded(picked[method]) == folded(expected[method]))
        assert agree >= 11 / 12, (method, picked[method], expected[method])


@pytest.mark.parametrize("kernel", [4, 5])
def test_the_steered_cnn_turns_with_the_map(kernel: int) -> None:
    # The same weights at every direction, wrapping around the circle: turning the map by k
    # directions turns the logits by k, for odd and even kernels alike.
    net = SteeredResponseCNN((2, 5, 36), 36, channels=8, layers=2, kernel=kernel, dropout=0.1).eval()
    maps = torch.randn(3, 2, 5, 36, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = net(maps)
        for k in (1, 7, 35):
            assert torch.allclose(net(maps.roll(k, dims=-1)), logits.roll(k, dims=-1), atol=1e-5)
    assert SteeredResponseCNN((2, 5, 36), 18, 8, 1, 3, 0.0)(maps).shape == (3, 18)  # a line's classes: the first half
    with pytest.raises(ValueError, match="37 classes but only 36 directions"):
        SteeredResponseCNN((2, 5, 36), 37, 8, 1, 3, 0.0)


@pytest.mark.parametrize(("directions", "kernel"), [(36, 5), (36, 4), (3, 7), (2, 8)])
def test_a_circular_convolution_is_the_sum_around_the_circle(directions: int, kernel: int) -> None:
    # y[d] = b + sum_k w[k] x[(d + k - kernel // 2) mod n], written out; a kernel may be wider than the circle.
    conv = CircularConv(3, 2, kernel)
    x = torch.randn(2, 3, directions, generator=torch.Generator().manual_seed(1))
    weight, bias = conv.conv.weight.detach(), conv.conv.bias.detach()
    expected = torch.stack([bias[None, :] + sum(x[:, :, (d + k - kernel // 2) % directions] @ weight[:, :, k].T
                                                for k in range(kernel)) for d in range(directions)], dim=-1)
    with torch.no_grad():
        assert torch.allclose(conv(x), expected, atol=1e-5)
