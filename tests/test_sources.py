"""Data sources beyond free field: circular arrays, reverberant rooms from a cached RIR bank,
mixed sources, and the classical baselines scored like the network. Real pyroomacoustics, tiny rooms."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from objectives.errors import InvalidConfig
from objectives.plain import to_dict
from objectives.task.array import ArrayConfig
from objectives.task.baselines import BaselineSettings, predict, score
from objectives.task.config import Band, TaskConfig
from objectives.task.dataset import cache_key, generate, split_clips
from objectives.task.geometry import angle_error_deg, class_error_deg, plane_wave_delays
from objectives.task.sources import FreeField, Reverberant, split_counts
from objectives.task.sources.rooms import bank_key, load_or_build_bank

# Small rooms with short tails: a bank of 3 rooms simulates in about a second.
ROOMS = Reverberant(rt60_s=(0.15, 0.25), distance_m=(0.8, 1.2), room_m=(3.5, 4.5), n_rooms=3, held_out_rooms=1,
                    positions_per_room=6)
CIRCULAR = ArrayConfig(geometry="circular", n_mics=6, radius_m=0.035)
TASK = TaskConfig(clip_samples=2048, n_train=120, n_val=60, sources=(ROOMS,))
BAND = Band("3000", 3000.0, 900.0)


def test_circular_array_geometry_and_classes() -> None:
    task = TaskConfig(array=CIRCULAR, n_angle_bins=36)
    task.validate()
    assert task.array.span_deg == 360 and task.class_width_deg == 10
    assert task.array.alias_free_hz == pytest.approx(343 / (2 * 0.035))  # neighbours 2 r sin(30°) = r apart
    delays = plane_wave_delays(CIRCULAR, torch.tensor([0.0]))[0]
    assert delays[0] == pytest.approx(-0.035 / 343) and delays[3] == pytest.approx(0.035 / 343)
    data = generate(TaskConfig(array=CIRCULAR, n_angle_bins=36, n_train=200, n_val=50, clip_samples=1024), BAND)
    assert data.span_deg == 360 and int(data.train_y.max()) > 18  # classes past 180 degrees are used
    assert ArrayConfig().span_deg == 180


def test_angle_errors_wrap_only_on_the_full_circle() -> None:
    assert angle_error_deg(torch.tensor([355.0]), torch.tensor([5.0]), 360).item() == pytest.approx(10)
    assert angle_error_deg(torch.tensor([175.0]), torch.tensor([5.0]), 180).item() == pytest.approx(170)
    assert class_error_deg(torch.tensor([0]), torch.tensor([35]), 36, 360).item() == pytest.approx(10)


def test_rir_bank_is_computed_once_cached_and_keyed(tmp_path) -> None:
    bank = load_or_build_bank(ROOMS, TASK, tmp_path)
    files = list(tmp_path.glob("rirs-*.pt"))
    assert len(files) == 1 and bank_key(ROOMS, TASK) in files[0].name
    assert bank.rirs.shape[:3] == (3, 6, 4) and bank.rirs.shape[3] > 1000  # a real reverberant tail
    assert all(0.15 <= rt60 <= 0.25 for rt60 in bank.rt60_s.tolist())
    stamp = files[0].stat().st_mtime_ns
    assert (torch.equal(load_or_build_bank(ROOMS, TASK, tmp_path).rirs, bank.rirs)
            and files[0].stat().st_mtime_ns == stamp)
    shared = Reverberant(share=3.0, rt60_s=(0.15, 0.25), distance_m=(0.8, 1.2), room_m=(3.5, 4.5), n_rooms=3,
                         held_out_rooms=1, positions_per_room=6)
    assert bank_key(shared, TASK) == bank_key(ROOMS, TASK)  # the share does not change the rooms
    wider = Reverberant(rt60_s=(0.15, 0.3), distance_m=(0.8, 1.2), room_m=(3.5, 4.5), n_rooms=3, held_out_rooms=1,
                        positions_per_room=6)
    assert bank_key(wider, TASK) != bank_key(ROOMS, TASK) and cache_key(TASK, BAND) != cache_key(
        TaskConfig(clip_samples=2048, n_train=120, n_val=60, sources=(wider,)), BAND)


def test_test_rooms_are_held_out_and_clips_are_deterministic(tmp_path) -> None:
    bank = load_or_build_bank(ROOMS, TASK, tmp_path)
    train = next(split_clips(TASK, BAND, "train", tmp_path))
    val = next(split_clips(TASK, BAND, "val", tmp_path))
    train_angles = set(bank.angles_deg[:2].flatten().tolist())
    assert set(train.angles_deg.tolist()) <= train_angles
    assert set(val.angles_deg.tolist()) <= set(bank.angles_deg[2].tolist())  # only the held-out room
    again = next(split_clips(TASK, BAND, "train", tmp_path))
    assert torch.equal(train.waveforms, again.waveforms)
    assert train.waveforms.shape == (120, 4, 2048) and torch.isfinite(train.waveforms).all()


def test_reverberation_blurs_the_inter_mic_phase(tmp_path) -> None:
    # Same band and SNR: free-field phase follows the plane wave exactly; a room's reflections do not.
    def coherence(task: TaskConfig) -> float:
        clips = next(split_clips(task, BAND, "val", tmp_path))
        spec = torch.fft.rfft(clips.waveforms.double(), dim=-1)
        freqs = torch.fft.rfftfreq(task.clip_samples, 1 / task.sample_rate)
        k = int(torch.argmin((freqs - 3000).abs()))
        delays = plane_wave_delays(task.array, clips.angles_deg)
        expected = -2 * math.pi * freqs[k].double() * (delays[:, 1] - delays[:, 0])
        measured = torch.angle(spec[:, 1, k] * spec[:, 0, k].conj())
        return torch.cos(measured - expected).mean().item()

    quiet = dict(clip_samples=2048, n_train=60, n_val=60, snr_db=(60.0, 60.0))
    assert coherence(TaskConfig(**quiet)) > 0.99
    assert coherence(TaskConfig(**quiet, sources=(ROOMS,))) < 0.9


def test_sources_mix_by_share() -> None:
    task = TaskConfig(n_train=100, n_val=10, sources=(FreeField(share=1.0), Reverberant(share=3.0)))
    task.validate()
    assert split_counts(task, "train") == [25, 75] and sum(split_counts(task, "val")) == 10


@pytest.mark.parametrize("sources, key, message", [
    ((), "sources", "at least one source"),
    ((FreeField(share=0.0),), "sources[0].share", "must be > 0"),
    ((Reverberant(held_out_rooms=10),), "sources[0].held_out_rooms", "rooms of their own"),
    ((Reverberant(room_m=(3.0, 8.0)),), "sources[0].room_m", "so every source fits"),
    ((Reverberant(symmetric_views=True),), "sources[0].symmetric_views", "needs a ring of evenly spaced"),
    ((Reverberant(symmetric_views="yes"),), "sources[0].symmetric_views", "must be true or false"),
])
def test_bad_sources_name_the_key(sources, key, message) -> None:
    with pytest.raises(InvalidConfig) as err:
        TaskConfig(sources=sources).validate()
    assert err.value.key == key and message in err.value.message


def test_baselines_are_scored_on_the_test_clips_like_the_network(tmp_path) -> None:
    clean = TaskConfig(clip_samples=2048, n_train=60, n_val=80, snr_db=(30.0, 30.0))
    metrics = score(clean, BAND, BaselineSettings(max_clips=40))
    assert metrics["baseline.test_clips"] == 40
    for method in ("music", "srp_phat"):
        assert metrics[f"baseline.{method}.accuracy"] > 0.8  # free field, high SNR, 3 kHz: easy
        assert 0 <= metrics[f"baseline.{method}.angle_error_deg"] < 5
    room = score(TaskConfig(clip_samples=2048, n_train=60, n_val=40, sources=(ROOMS,), array=CIRCULAR,
                            n_angle_bins=12), BAND, BaselineSettings(methods=["srp_phat"], max_clips=40), tmp_path)
    assert set(room) == {"baseline.test_clips", "baseline.srp_phat.accuracy", "baseline.srp_phat.angle_error_deg"}
    assert room["baseline.srp_phat.angle_error_deg"] <= 180


def test_symmetric_views_turn_each_room_the_way_srp_phat_hears_it(tmp_path) -> None:
    turned = dataclasses.replace(ROOMS, symmetric_views=True)
    tasks = {views: TaskConfig(array=CIRCULAR, n_angle_bins=36, clip_samples=2048, n_train=240, n_val=20,
                               snr_db=(20.0, 20.0), sources=(rooms,))
             for views, rooms in ((False, ROOMS), (True, turned))}
    tasks[True].validate()
    clips = {views: next(iter(split_clips(task, BAND, "train", tmp_path))) for views, task in tasks.items()}
    # SRP-PHAT knows only the array: it finds turned sources as well as the stored ones only if
    # the mics were permuted and the angles moved consistently (a wrong turn scores near 1/36)
    accuracy = {views: (predict(tasks[views], BAND, "srp_phat", c.waveforms) == c.labels).double().mean().item()
                for views, c in clips.items()}
    assert accuracy[False] > 0.5 and abs(accuracy[True] - accuracy[False]) < 0.1, accuracy
    bank = load_or_build_bank(turned, tasks[True], tmp_path)
    stored = {round(a, 6) for a in bank.angles_deg[list(bank.rooms("train"))].flatten().tolist()}
    heard = [round(a, 6) for a in clips[True].angles_deg.tolist()]
    assert sum(a not in stored for a in heard) > len(heard) / 2  # 11 of the 12 views are new angles
    assert all(a in stored for a in (round(a, 6) for a in clips[False].angles_deg.tolist()))
    validation = next(iter(split_clips(tasks[True], BAND, "val", tmp_path)))
    assert {round(a, 6) for a in validation.angles_deg.tolist()} <= {
        round(a, 6) for a in bank.angles_deg[list(bank.rooms("val"))].flatten().tolist()}  # held-out rooms as stored
    assert bank_key(turned, tasks[True]) == bank_key(ROOMS, tasks[True])  # the same bank
    assert cache_key(tasks[True], BAND) != cache_key(tasks[False], BAND)  # not the same clips
    assert "symmetric_views" not in to_dict(ROOMS) and to_dict(turned)["symmetric_views"] is True
