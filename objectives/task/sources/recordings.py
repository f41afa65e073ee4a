"""The user's recordings: a folder with `array.json`, `labels.csv` and audio files.

    array.json   {"sample_rate": 16000, "mic_positions_m": [[x, y], ...] (channel order; z ignored),
                  "azimuth_zero_deg": 0, "azimuth_clockwise": false}
    labels.csv   file,azimuth_deg[,start_s,end_s][,split]

`file` is a multichannel WAV/FLAC (anything soundfile reads), or a folder holding one mono
file per channel (channel order = natural name order: ch2 before ch10). Azimuths are in
the folder's own convention: 0 deg points `azimuth_zero_deg` counter-clockwise from +x of
the positions' frame, and grows clockwise if `azimuth_clockwise`. The positions are turned
into the task's frame (counter-clockwise from +x) so the labels stay as written. Each row's
segment is cut into non-overlapping clips. Splits are by recording: a file belongs to one
split; without a `split` column a seeded share of the files (by name) is held out.

`index_folder` checks everything from the headers alone, so a study fails on bad input
before anything starts; `folder_clips` decodes and band-passes the audio of a split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import soundfile
import torch
import torchaudio

from objectives.task.array import ArrayConfig
from objectives.task.geometry import angle_labels
from objectives.task.synthesis import Clips

if TYPE_CHECKING:
    from objectives.task.config import Band, TaskConfig

SPLIT_NAMES = ("train", "val")  # the dataset's two splits; "val" is the test set the baselines share
_REQUIRED = ("file", "azimuth_deg")
_OPTIONAL = ("start_s", "end_s", "split")


class RecordingsError(ValueError):
    """Bad input in a recordings folder; the message names the file or row and what to do."""


@dataclass(frozen=True)
class Segment:
    row: int  # line number in labels.csv (the header is line 1)
    channels: tuple[Path, ...]  # one multichannel file, or one mono file per channel
    azimuth_deg: float
    start: int  # frames
    n_clips: int
    split: str


@dataclass(frozen=True)
class FolderIndex:
    folder: Path
    array: ArrayConfig
    sample_rate: int
    segments: tuple[Segment, ...]

    def clip_count(self, split: str) -> int:
        return sum(segment.n_clips for segment in self.segments if segment.split == split)


def read_array(folder: Path) -> tuple[ArrayConfig, int]:
    """The array (in the task's angle frame) and sample rate described by `folder/array.json`."""
    path = folder / "array.json"
    try:
        spec = json.loads(path.read_text())
        rate = spec["sample_rate"]
        points = [[float(c) for c in point[:2]] for point in spec["mic_positions_m"]]
        zero = math.radians(float(spec.get("azimuth_zero_deg", 0.0)))
        clockwise = bool(spec.get("azimuth_clockwise", False))
    except OSError as err:
        raise RecordingsError(f"{path}: cannot read ({err.strerror}); every recordings folder needs one") from None
    except (ValueError, KeyError, TypeError, IndexError) as err:
        raise RecordingsError(f"{path}: malformed ({type(err).__name__}: {err}); it needs sample_rate and "
                              "mic_positions_m [[x, y], ...] in metres, in channel order") from None
    if not isinstance(rate, int) or rate <= 0:
        raise RecordingsError(f"{path}: sample_rate must be a whole number of Hz, got {rate!r}")
    # Turn the frame so the folder's azimuth 0 lies on +x and azimuths grow counter-clockwise.
    cos, sin = math.cos(-zero), math.sin(-zero)
    turned = [(x * cos - y * sin, x * sin + y * cos) for x, y in points]
    positions = tuple((round(x, 9), round(-y if clockwise else y, 9)) for x, y in turned)
    array = ArrayConfig(geometry="custom", n_mics=len(positions), positions_m=positions)
    try:
        array.validate()
    except ValueError as err:
        raise RecordingsError(f"{path}: {err}") from None
    if array.span_deg == 180.0 and any(abs(y) > 1e-6 for _, y in positions):
        raise RecordingsError(f"{path}: a linear array's azimuth 0 must lie along its axis (0-180 deg covers one "
                              "side); set azimuth_zero_deg to the direction of the array's axis")
    return array, rate


def _natural(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _channel_files(folder: Path, name: str, where: str) -> tuple[Path, ...]:
    path = folder / name
    if path.is_dir():
        files = tuple(sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")), key=_natural))
        if not files:
            raise RecordingsError(f"{where}: {path} is an empty folder; it should hold one mono file per channel")
        return files
    if not path.is_file():
        raise RecordingsError(f"{where}: {path} does not exist; fix the name or remove the row")
    return (path,)


def _probe(files: tuple[Path, ...], where: str, array: ArrayConfig, rate: int) -> int:
    """Frames per channel, after checking channel count and sample rate against array.json."""
    infos = []
    for path in files:
        try:
            infos.append(soundfile.info(str(path)))
        except (soundfile.LibsndfileError, RuntimeError) as err:
            raise RecordingsError(f"{where}: {path}: unreadable audio ({err}); re-export it as WAV or FLAC") from None
    channels = sum(info.channels for info in infos)
    if len(files) > 1 and any(info.channels != 1 for info in infos):
        raise RecordingsError(f"{where}: {files[0].parent}: one-file-per-channel folders need mono files")
    if channels != array.n_mics:
        raise RecordingsError(f"{where}: {files[0] if len(files) == 1 else files[0].parent}: {channels} channels, "
                              f"but array.json lists {array.n_mics} microphones; every recording needs one "
                              "channel per microphone, in the same order")
    for path, info in zip(files, infos):
        if info.samplerate != rate:
            raise RecordingsError(f"{where}: {path}: sample rate {info.samplerate} Hz, but array.json says "
                                  f"{rate} Hz; resample it (every file must match)")
    if len({info.frames for info in infos}) > 1:
        raise RecordingsError(f"{where}: {files[0].parent}: channel files differ in length")
    return infos[0].frames


def _number(row: dict[str, str], key: str, where: str) -> float | None:
    text = (row.get(key) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RecordingsError(f"{where}: {key} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise RecordingsError(f"{where}: {key} must be finite, got {text!r}")
    return value


def _read_rows(folder: Path) -> list[dict[str, str]]:
    path = folder / "labels.csv"
    try:
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or []]
            reader.fieldnames = columns
            rows = list(reader)
    except OSError as err:
        raise RecordingsError(f"{path}: cannot read ({err.strerror}); every recordings folder needs one") from None
    missing = [name for name in _REQUIRED if name not in columns]
    unknown = [name for name in columns if name not in _REQUIRED + _OPTIONAL]
    if missing or unknown:
        raise RecordingsError(f"{path}: columns must be {list(_REQUIRED)} plus optional {list(_OPTIONAL)}; "
                              f"missing {missing}, unknown {unknown}")
    if not rows:
        raise RecordingsError(f"{path}: no rows; list one recording per row")
    return rows


def _segment(folder: Path, row: dict[str, str], line: int, array: ArrayConfig, rate: int,
             clip_samples: int) -> Segment:
    where = f"{folder / 'labels.csv'} row {line}"
    azimuth = _number(row, "azimuth_deg", where)
    span = array.span_deg
    if azimuth is None or not 0 <= azimuth <= span:
        raise RecordingsError(f"{where}: azimuth_deg {row.get('azimuth_deg')!r} is outside the array's range "
                              f"[0, {span:g}] ({'linear' if span == 180 else 'planar'} array); check the angle "
                              "or the convention in array.json")
    channels = _channel_files(folder, (row.get("file") or "").strip(), where)
    frames = _probe(channels, where, array, rate)
    start_s, end_s = _number(row, "start_s", where), _number(row, "end_s", where)
    start = round((start_s or 0.0) * rate)
    end = frames if end_s is None else round(end_s * rate)
    if not 0 <= start < end <= frames:
        raise RecordingsError(f"{where}: start_s/end_s ({start_s}, {end_s}) must satisfy 0 <= start < end <= "
                              f"the file's length ({frames / rate:.3f} s)")
    if end - start < clip_samples:
        raise RecordingsError(f"{where}: the segment lasts {(end - start) / rate:.3f} s, shorter than one clip "
                              f"({clip_samples / rate:.3f} s = task.clip_samples); lengthen it or drop the row")
    split = (row.get("split") or "").strip().lower()
    if split and split not in SPLIT_NAMES:
        raise RecordingsError(f"{where}: split {split!r} must be one of {list(SPLIT_NAMES)} (or the column left out)")
    return Segment(line, channels, azimuth % 360.0 if span == 360 else azimuth, start,
                   (end - start) // clip_samples, split)


def _assign_splits(segments: list[Segment], seed: int, val_fraction: float, where: Path) -> list[Segment]:
    """Every segment of a recording in the same split: given, or a seeded draw over recordings."""
    given: dict[tuple[Path, ...], set[str]] = {}
    for segment in segments:
        given.setdefault(segment.channels, set()).add(segment.split)
    for channels, splits in given.items():
        if len(splits) > 1:
            raise RecordingsError(f"{where}: {channels[0]} has rows in splits {sorted(splits)}; splits are by "
                                  "recording (clips of one file must not reach both), so give all its rows one split")
    if any(segment.split for segment in segments):
        if not all(segment.split for segment in segments):
            raise RecordingsError(f"{where}: some rows have no split; fill the column or drop it for a seeded split")
        return segments
    recordings = sorted(given, key=lambda channels: str(channels[0]))
    random.Random(seed).shuffle(recordings)
    held_out = set(recordings[: max(1, round(val_fraction * len(recordings)))])
    return [replace(s, split="val" if s.channels in held_out else "train") for s in segments]


def index_folder(folder: Path, clip_samples: int, seed: int, val_fraction: float) -> FolderIndex:
    """Check the folder from its headers alone and list its segments with their splits."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecordingsError(f"{folder}: not a folder; give the folder holding array.json and labels.csv")
    array, rate = read_array(folder)
    rows = _read_rows(folder)
    segments = [_segment(folder, row, line, array, rate, clip_samples) for line, row in enumerate(rows, start=2)]
    segments = _assign_splits(segments, seed, val_fraction, folder / "labels.csv")
    index = FolderIndex(folder, array, rate, tuple(segments))
    for split in SPLIT_NAMES:
        if index.clip_count(split) == 0:
            raise RecordingsError(f"{folder / 'labels.csv'}: the {split!r} split is empty; it needs at least one "
                                  "recording (set the split column, or record more files for a seeded split)")
    return index


def task_for_folder(task: TaskConfig, index: FolderIndex) -> TaskConfig:
    """The task with the folder's array, sample rate and clip counts."""
    return replace(task, array=index.array, sample_rate=index.sample_rate,
                   n_train=index.clip_count("train"), n_val=index.clip_count("val"))


def check_task(index: FolderIndex, task: TaskConfig) -> None:
    """The task must describe the folder as it is now (see `task_for_folder`)."""
    expected = task_for_folder(task, index)
    for key in ("array", "sample_rate", "n_train", "n_val"):
        if getattr(task, key) != getattr(expected, key):
            raise RecordingsError(f"{index.folder}: task.{key} ({getattr(task, key)}) does not match the folder "
                                  f"({getattr(expected, key)}); it comes from the folder, so leave it out of the YAML")


def read_segment(segment: Segment, clip_samples: int) -> torch.Tensor:
    stop = segment.start + segment.n_clips * clip_samples
    parts = [soundfile.read(str(path), start=segment.start, stop=stop, dtype="float32", always_2d=True)[0]
             for path in segment.channels]
    return torch.cat([torch.from_numpy(part.T.copy()) for part in parts])  # (channels, frames)


def band_pass(waveforms: torch.Tensor, sample_rate: int, band: Band) -> torch.Tensor:
    """Cut the band with a linear-phase FIR (Hann-windowed sinc) applied by FFT convolution.

    Its transition is about 4 fs / taps wide: taps = 8 fs / width keeps it under half the
    band's width. Linear phase delays every channel alike, so inter-mic phase is untouched,
    and FFT convolution runs many times faster than a cascade of recursive biquads.
    """
    taps = 2 * round(4 * sample_rate / band.width_hz) + 1
    n = torch.arange(taps, dtype=torch.float64) - taps // 2
    low, high = band.low_hz / sample_rate, band.high_hz / sample_rate  # cycles per sample
    kernel = (2 * high * torch.sinc(2 * high * n) - 2 * low * torch.sinc(2 * low * n)) * torch.hann_window(
        taps, periodic=False, dtype=torch.float64)
    kernel = kernel.to(waveforms.dtype).expand(*waveforms.shape[:-1], taps)
    return torchaudio.functional.fftconvolve(waveforms, kernel, mode="same")


def folder_clips(index: FolderIndex, task: TaskConfig, band: Band, split: str) -> Iterator[Clips]:
    """The split's clips, one chunk per segment: band-passed over the whole segment, then cut."""
    for segment in index.segments:
        if segment.split != split:
            continue
        audio = band_pass(read_segment(segment, task.clip_samples), index.sample_rate, band)
        clips = audio.reshape(audio.shape[0], segment.n_clips, task.clip_samples).transpose(0, 1)
        power = clips.double().pow(2).mean(dim=(1, 2), keepdim=True).clamp_min(1e-20)
        angles = torch.full((segment.n_clips,), segment.azimuth_deg, dtype=torch.float64)
        yield Clips((clips / power.sqrt()).float(), angles, angle_labels(angles, task),
                    torch.full((segment.n_clips,), math.nan, dtype=torch.float64))


def fingerprint(folder: Path) -> str:
    """Changes when any file in the folder changes (name, size or modification time)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
