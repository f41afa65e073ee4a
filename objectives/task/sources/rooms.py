"""Reverberant rooms: a bank of room impulse responses (RIRs), simulated once with
pyroomacoustics, cached on disk, and convolved with fresh band-limited sources per clip.

A full image-source simulation of a reverberant room takes 0.3 to several seconds, so the
rooms are simulated once per bank (not per clip): `positions_per_room` source positions in
each of `n_rooms` shoebox rooms, with RT60, size and source distance drawn from their
ranges. Passing a fresh source through a stored RIR costs well under a millisecond per clip.
The last `held_out_rooms` rooms are seen only by the validation (test) split. With
`symmetric_views` a training clip hears its RIR turned by one of a ring array's symmetries.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from objectives.plain import to_dict
from objectives.task.array import SPEED_OF_SOUND
from objectives.task.geometry import angle_labels
from objectives.task.sources.base import CHUNK, WALL_M
from objectives.task.synthesis import Clips, add_sensor_noise, draw_snr, in_band, unit_power

if TYPE_CHECKING:
    from objectives.task.config import Band, TaskConfig
    from objectives.task.sources.reverberant import Reverberant

log = logging.getLogger(__name__)

BANK_VERSION = 2  # bump when the simulation changes in a way the parameters do not capture
_HEIGHT_M = (2.5, 3.5)  # ceiling heights of ordinary rooms
_EAR_M = 1.5  # array and sources at one height: elevation 0, so azimuth is the whole direction
_memo: dict[str, RirBank] = {}


@dataclass(frozen=True)
class RirBank:
    rirs: torch.Tensor  # (rooms, positions, mics, taps) float32
    angles_deg: torch.Tensor  # (rooms, positions) float64: source azimuth seen from the array centre
    rt60_s: torch.Tensor  # (rooms,) the RT60 each room was built for
    held_out_rooms: int

    def rooms(self, split: str) -> range:
        total = self.rirs.shape[0]
        return range(total - self.held_out_rooms) if split == "train" else range(total - self.held_out_rooms, total)


def bank_key(source: Reverberant, task: TaskConfig) -> str:
    """Every parameter that shapes the bank (not the share, not the band: RIRs are broadband)."""
    spec = {"version": BANK_VERSION,
            "rooms": {k: v for k, v in to_dict(source).items() if k not in ("share", "symmetric_views")},
            "array": to_dict(task.array), "sample_rate": task.sample_rate, "seed": task.seed}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _room(source: Reverberant, task: TaskConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    """Simulate one room: (rirs (positions, mics, taps), angles (positions,), rt60)."""
    import pyroomacoustics as pra  # heavy (~1 s): loaded only when a room bank is simulated

    size = [*rng.uniform(*source.room_m, size=2), rng.uniform(*_HEIGHT_M)]
    rt60 = float(rng.uniform(*source.rt60_s))
    absorption, max_order = pra.inverse_sabine(rt60, size)
    room = pra.ShoeBox(size, fs=task.sample_rate, materials=pra.Material(absorption), max_order=max_order)
    # The array stays near the centre so that every source fits at its distance with WALL_M to spare.
    slack = max(0.0, min(size[:2]) / 2 - source.distance_m[1] - WALL_M)
    centre = np.array([size[0] / 2, size[1] / 2]) + rng.uniform(-slack, slack, size=2) / math.sqrt(2)
    mics = np.array(task.array.positions()) + centre
    room.add_microphone_array(np.vstack([mics.T, np.full(len(mics), _EAR_M)]))
    # Stratified angles: every class gets sources even with few positions per room.
    span = task.array.span_deg
    angles = (np.arange(source.positions_per_room) + rng.uniform(size=source.positions_per_room)) * (
        span / source.positions_per_room)
    for angle, distance in zip(angles, rng.uniform(*source.distance_m, size=len(angles))):
        theta = math.radians(angle)
        room.add_source([centre[0] + distance * math.cos(theta), centre[1] + distance * math.sin(theta), _EAR_M])
    room.compute_rir()
    # Past 1.2 x RT60 after the direct path the tail is 70 dB down: cutting it there halves the
    # convolution cost (the image-source RIRs run on well beyond the RT60).
    cut = math.ceil((1.2 * rt60 + source.distance_m[1] / SPEED_OF_SOUND) * task.sample_rate)
    taps = min(cut, max(len(rir) for mic in room.rir for rir in mic))
    rirs = np.zeros((len(angles), len(mics), taps), dtype=np.float32)
    for m, mic in enumerate(room.rir):
        for s, rir in enumerate(mic):
            rirs[s, m, : min(len(rir), taps)] = rir[:taps]
    return rirs, angles, rt60


def build_bank(source: Reverberant, task: TaskConfig) -> RirBank:
    """Simulate every room of the bank (seconds per room: call through `load_or_build_bank`)."""
    rng = np.random.default_rng(int(bank_key(source, task), 16))
    rooms = [_room(source, task, rng) for _ in range(source.n_rooms)]
    taps = max(rirs.shape[-1] for rirs, _, _ in rooms)
    stacked = np.stack([np.pad(rirs, ((0, 0), (0, 0), (0, taps - rirs.shape[-1]))) for rirs, _, _ in rooms])
    return RirBank(
        rirs=torch.from_numpy(stacked),
        angles_deg=torch.tensor(np.stack([angles for _, angles, _ in rooms]), dtype=torch.float64),
        rt60_s=torch.tensor([rt60 for _, _, rt60 in rooms], dtype=torch.float64),
        held_out_rooms=source.held_out_rooms,
    )


def load_or_build_bank(source: Reverberant, task: TaskConfig, cache_dir: Path | None) -> RirBank:
    """The bank from memory, from `cache_dir`, or simulated once (bands building in parallel
    processes wait on a file lock instead of simulating the same rooms again)."""
    key = bank_key(source, task)
    if key in _memo:
        return _memo[key]
    if cache_dir is None:
        _memo[key] = build_bank(source, task)
        return _memo[key]
    path = Path(cache_dir) / f"rirs-{key}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            log.info("simulating %d rooms into %s", source.n_rooms, path)
            bank = build_bank(source, task)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(fd)
            torch.save(asdict(bank), tmp)
            os.replace(tmp, path)
    _memo[key] = RirBank(**torch.load(path, weights_only=True))
    return _memo[key]


def folded_responses(bank: RirBank, task: TaskConfig, band: Band) -> torch.Tensor:
    """The RIRs' spectra at the clip's bins, inside the band: (rooms, positions, mics, band bins).

    Each RIR is folded onto one clip length (its tail added back onto its start): with a
    source that repeats every clip, that is exactly the steady-state room response.
    """
    n = task.clip_samples
    taps = bank.rirs.shape[-1]
    padded = torch.nn.functional.pad(bank.rirs, (0, -taps % n))
    folded = padded.reshape(*padded.shape[:-1], -1, n).sum(dim=-2)
    return torch.fft.rfft(folded)[..., in_band(task, band, n)]


def symmetric_views(n_mics: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 2·M symmetries of a ring of M evenly spaced mics (mic i at 360·i/M degrees): for each,
    the stored mic that each mic hears (M,), whether the scene is mirrored across the x axis and
    the degrees it turns by. A source at θ in the turned scene is at ±θ + turn."""
    orders, mirrored, turns = [], [], []
    for mirror in (False, True):
        for step in range(n_mics):
            orders.append([((step - mic) if mirror else (mic - step)) % n_mics for mic in range(n_mics)])
            mirrored.append(mirror)
            turns.append(360.0 * step / n_mics)
    return torch.tensor(orders), torch.tensor(mirrored), torch.tensor(turns, dtype=torch.float64)


def reverberant_clips(bank: RirBank, task: TaskConfig, band: Band, split: str, n: int,
                      generator: torch.Generator, turned: bool = False) -> Iterator[Clips]:
    """`n` clips in chunks: fresh band-limited sources through random stored RIRs of the split's
    rooms; `turned` (training clips with `symmetric_views`): each RIR in one of the ring's
    symmetric orientations, drawn at random.

    As in free field (synthesis.py) the source is band-limited noise drawn in the frequency
    domain with a period of one clip, so the room is one product of spectra per clip: no
    transient, no long linear convolution, only the band's bins touched.
    """
    rooms = bank.rooms(split)
    mask = in_band(task, band, task.clip_samples)
    responses = folded_responses(bank, task, band)
    orders, mirrored, turns = symmetric_views(task.array.n_mics)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        room = torch.randint(rooms.start, rooms.stop, (size,), generator=generator)
        position = torch.randint(0, bank.rirs.shape[1], (size,), generator=generator)
        response, angles = responses[room, position], bank.angles_deg[room, position]
        if turned:
            view = torch.randint(0, len(orders), (size,), generator=generator)
            response = response.gather(1, orders[view][:, :, None].expand_as(response))
            angles = (torch.where(mirrored[view], -angles, angles) + turns[view]) % 360.0
        snr_db = draw_snr(task, size, generator)
        source = torch.complex(torch.randn(size, int(mask.sum()), generator=generator),
                               torch.randn(size, int(mask.sum()), generator=generator))
        spectrum = torch.zeros(size, task.array.n_mics, mask.numel(), dtype=torch.complex64)
        spectrum[..., mask] = source[:, None, :] * response
        clean = unit_power(torch.fft.irfft(spectrum, n=task.clip_samples))
        yield Clips(add_sensor_noise(clean, task, band, snr_db, generator), angles, angle_labels(angles, task), snr_db)
