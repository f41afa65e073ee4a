"""A trained band network as a direction finder: a clip's waveforms in, azimuths out, kept in one file.

`bandsearch train BEST.yaml --band B --save FILE` writes one; in your code:

    localizer = Localizer.load("doa_1000.pt")
    azimuths = localizer(waveforms)   # (batch, mics, samples) at the task's sample rate -> degrees

It applies what the network was trained on: the band's features of the task's array, standardised
with the training clips' statistics, then the network; the answer is the centre of the class it picks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from objectives.plain import to_dict
from objectives.task.config import Band, TaskConfig, task_from_dict
from objectives.task.dataset import BandDataset, standardise
from objectives.task.features import BandFeatures, feature_shape
from objectives.task.geometry import angle_classes
from objectives.train.models import ModelConfig, build_model, model_from_dict

FORMAT = 1  # of the saved file; bump when its keys change


class Localizer(torch.nn.Module):
    """The band's feature extraction, the training clips' standardisation and the network, in evaluation mode."""

    def __init__(self, task: TaskConfig, band: Band, model: ModelConfig, net: torch.nn.Module,
                 feature_mean: torch.Tensor, feature_std: torch.Tensor):
        super().__init__()
        self.task, self.band, self.model = task, band, model
        self.features = BandFeatures(task, band, model.feature_kind)
        self.net = net
        self.register_buffer("feature_mean", feature_mean)
        self.register_buffer("feature_std", feature_std)
        self.register_buffer("centres_deg", angle_classes(task))
        self.eval()

    @classmethod
    def trained(cls, task: TaskConfig, band: Band, model: ModelConfig, net: torch.nn.Module,
                data: BandDataset) -> Localizer:
        """From a training run's network (moved to the CPU) and the dataset it trained on, which holds the
        standardisation."""
        if data.feature_mean is None or data.feature_std is None:
            raise ValueError("the dataset has no standardisation statistics; build it with load_or_generate")
        return cls(task, band, model, net.cpu(), data.feature_mean, data.feature_std)

    @torch.no_grad()
    def logits(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, mics, samples) -> (batch, classes)."""
        mics = self.task.array.n_mics
        if waveforms.dim() != 3 or waveforms.shape[1] != mics or waveforms.shape[2] < self.task.n_fft:
            raise ValueError(f"expects waveforms of shape (batch, {mics} mics, samples >= n_fft {self.task.n_fft}) "
                             f"at {self.task.sample_rate} Hz, got {tuple(waveforms.shape)}; it was trained on "
                             f"clips of {self.task.clip_samples} samples")
        x = self.features(waveforms.to(self.feature_mean.device, torch.float32))
        return self.net(standardise(x, self.feature_mean, self.feature_std))

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """(batch, mics, samples) -> (batch,) azimuth in degrees: the centre of the class the network picks."""
        return self.centres_deg[self.logits(waveforms).argmax(dim=1)]

    def save(self, path: str | Path) -> None:
        torch.save({"format": FORMAT, "task": to_dict(self.task), "band": to_dict(self.band),
                    "model": self.model.plain(), "state": self.net.state_dict(),
                    "feature_mean": self.feature_mean, "feature_std": self.feature_std}, path)

    @classmethod
    def load(cls, path: str | Path) -> Localizer:
        """A saved localizer; a model of your own needs its factory's module importable, as in training."""
        saved = torch.load(path, weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ValueError(f"{path}: not a localizer file of format {FORMAT} (written by `bandsearch train --save`)")
        task, band, model = task_from_dict(saved["task"]), Band(**saved["band"]), model_from_dict(saved["model"])
        net = build_model(model, feature_shape(task, band, model.feature_kind), task.n_angle_bins)
        net.load_state_dict(saved["state"])
        return cls(task, band, model, net, saved["feature_mean"], saved["feature_std"])
