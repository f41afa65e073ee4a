"""Band-limited spatial features: per-mic log-magnitude and inter-channel phase differences.

Only the STFT bins inside the band are kept, which makes the features 10 to 30 times
smaller than the full spectrum and keeps each band's model looking at its own physics.

The phase of mic m is that of the frame-averaged cross-spectrum against mic 0,
arg sum_frames X_m X_0^*, given as its cosine and sine. For a far-field source in direction
u (azimuth θ, counter-clockwise from +x) it is 2π f (p_m - p_0)·u / c: positive when mic m
is nearer the source than mic 0 and hears it first; on the linear array, mic m lies m
spacings d from mic 0 along +x, which makes it 2π f m d cosθ / c.

The `pairs` kind instead gives every microphone pair (m, n), m < n, the phase of
sum_frames W_m W_n^*, where W is each frame's spectrum whitened to unit magnitude (PHAT): SRP-PHAT's
steered response at any direction is a weighted sum of these cosines and sines, so a linear
layer on them can express it.

The `steered` kind gives SRP-PHAT's and MUSIC's responses per bin over a circle of directions
(objectives/task/steered.py): the classical methods' own evidence, before they sum it over bins.
"""

from __future__ import annotations

import torch
import torchaudio

from objectives.task.config import Band, TaskConfig
from objectives.task.steered import circle_angles, steered_responses, steering_vectors


def band_bins(task: TaskConfig, band: Band) -> torch.Tensor:
    """Indices of the STFT bins whose centre lies inside the band."""
    freqs = torch.fft.rfftfreq(task.n_fft, d=1.0 / task.sample_rate)
    return torch.nonzero((freqs >= band.low_hz) & (freqs <= band.high_hz)).flatten()


class BandFeatures(torch.nn.Module):
    """waveforms (batch, mics, samples) -> features of `kind`: `averaged`, one vector
    (batch, (mics + 2*(mics-1)) * bins) from frame-averaged spectra, or `frames`, a map per frame
    (batch, mics + 2*(mics-1), bins, frames). Channels: each mic's log power (less the clip's
    mean, for level invariance), then the cos and sin of each mic's phase against mic 0.
    `pairs`: one vector (batch, 2 * pairs * bins), the cos and sin of each pair's whitened phase.
    `steered`: (batch, 2, bins, directions), SRP-PHAT's and MUSIC's response per bin and direction."""

    def __init__(self, task: TaskConfig, band: Band, kind: str = "averaged"):
        super().__init__()
        # center=False: every frame lies inside the clip. The default (center=True, reflect
        # padding) fills the outer half of the first and last frames with time-reversed
        # signal, whose inter-mic phase has the opposite sign.
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=task.n_fft, hop_length=task.n_fft // 2, power=None, center=False
        )
        self.register_buffer("bins", band_bins(task, band))
        if self.bins.numel() == 0:
            raise ValueError(f"band {band.name!r} covers no STFT bin at n_fft={task.n_fft}")
        self.kind = kind
        if kind == "steered":
            freqs = torch.fft.rfftfreq(task.n_fft, d=1.0 / task.sample_rate)[self.bins]
            self.register_buffer("steering", steering_vectors(task.array, freqs, circle_angles(task.class_width_deg)))

    def band_spectra(self, waveforms: torch.Tensor) -> torch.Tensor:
        """The STFT on the band's bins, (batch, mics, bins, frames)."""
        return self.spectrogram(waveforms)[:, :, self.bins, :]

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        spec = self.band_spectra(waveforms)
        if self.kind == "pairs":
            return pair_phases(spec)
        if self.kind == "steered":
            return steered_responses(spec, self.steering)
        power, cross = spec.abs().pow(2), spec[:, 1:] * spec[:, :1].conj()  # cross-spectra against mic 0
        if self.kind == "averaged":
            power, cross = power.mean(dim=-1), cross.mean(dim=-1)
        log_power = torch.log(power + 1e-10)
        log_power = log_power - log_power.mean(dim=tuple(range(1, log_power.dim())), keepdim=True)
        phase = cross / (cross.abs() + 1e-12)  # only the phase
        features = torch.cat([log_power, phase.real, phase.imag], dim=1)
        return features.flatten(1) if self.kind == "averaged" else features


def pair_phases(spec: torch.Tensor) -> torch.Tensor:
    """(batch, mics, bins, frames) spectra -> (batch, 2 * pairs * bins): the cos, then the sin, of
    each pair's frame-averaged cross-spectrum of whitened frames, pairs in (0, 1), (0, 2), ... order."""
    white = spec / (spec.abs() + 1e-12)
    first, second = torch.triu_indices(spec.shape[1], spec.shape[1], 1)
    cross = (white[:, first] * white[:, second].conj()).mean(dim=-1)
    phase = cross / (cross.abs() + 1e-12)
    return torch.cat([phase.real, phase.imag], dim=1).flatten(1)


def feature_shape(task: TaskConfig, band: Band, kind: str) -> tuple[int, ...]:
    """The shape of one clip's features of `kind` (no batch dimension), from a silent clip."""
    with torch.no_grad():
        silent = torch.zeros(1, task.array.n_mics, task.clip_samples)
        return tuple(BandFeatures(task, band, kind)(silent).shape[1:])
