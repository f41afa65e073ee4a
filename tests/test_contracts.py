"""Contract tests over bandsearch's tables: samplers, pruners, data sources, schedules and CLI
commands. Each test is parametrised over the table itself, so a new entry is tested the
moment it is added (and a new source kind without a setup below fails loudly)."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import optuna
import pytest
import torch

from objectives.plain import to_dict
from objectives.task.array import ArrayConfig
from objectives.task.config import Band, TaskConfig
from objectives.task.sources import SOURCES, FreeField, Reverberant, source_from_dict, split_counts
from objectives.task.sources.folder import Folder
from objectives.task.sources.folder_writer import write_synthetic
from objectives.task.sources.recordings import index_folder, task_for_folder
from objectives.task.synthesis import Clips
from objectives.train.optim.schedules import SCHEDULES, resolve_schedule, warmup_then
from search.cli import COMMANDS, main
from search.space import parse_space
from search.strategies import PRUNERS, SAMPLERS, build_pruner, build_sampler

README = Path(__file__).resolve().parents[1] / "README.md"

# --- samplers ---------------------------------------------------------------------------

# Two optimizers with different conditional hyperparameters (and lr ranges that do not overlap).
CONDITIONAL = {
    "optimizer": {
        "sgd": {"lr": {"low": 1e-2, "high": 0.3, "log": True}, "momentum": {"low": 0.5, "high": 0.95}},
        "adam": {"lr": {"low": 1e-4, "high": 1e-3, "log": True}, "beta1": {"low": 0.8, "high": 0.95}},
    },
    "batch_size": {"choices": [32, 64]},
}
BRANCH_PARAMS = {"sgd": {"momentum"}, "adam": {"beta1"}}
LR_RANGES = {"sgd": (1e-2, 0.3), "adam": (1e-4, 1e-3)}


def _run_sampler(name: str, seed: int) -> list[tuple[dict, dict]]:
    """Past the sampler's startup trials, so a model-based sampler proposes from its model too."""
    study = optuna.create_study(direction="maximize", sampler=build_sampler({"name": name}, seed=seed))
    assert isinstance(study.sampler, SAMPLERS[name][0])
    space = parse_space(CONDITIONAL, n_train=400, epochs=3)
    draws = []
    for _ in range(SAMPLERS[name][1].get("n_startup_trials", 0) + 8):
        trial = study.ask()
        config = space.sample(trial)
        draws.append((config, dict(trial.params)))
        # A score that rewards one corner of each branch: something for TPE to model.
        study.tell(trial, sum(config["optimizer_params"].values()) + (config["optimizer"] == "sgd"))
    return draws


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_sampler_samples_only_the_chosen_optimizers_hyperparameters(name: str) -> None:
    draws = _run_sampler(name, seed=0)
    assert {config["optimizer"] for config, _ in draws} == {"sgd", "adam"}
    for config, params in draws:
        chosen = config["optimizer"]
        assert set(params) == {"optimizer", "batch_size", f"{chosen}.lr"} | {
            f"{chosen}.{key}" for key in BRANCH_PARAMS[chosen]}, params
        assert set(config["optimizer_params"]) == BRANCH_PARAMS[chosen]
        low, high = LR_RANGES[chosen]
        assert low <= config["lr"] <= high and config["batch_size"] in (32, 64)
    assert _run_sampler(name, seed=0) == draws  # a seeded study repeats


# --- pruners ----------------------------------------------------------------------------

EPOCHS = 10
PRUNE_BY = 5  # a clearly bad trial must stop by mid-training
# ...except in Hyperband, whose most patient bracket starts pruning at max_resource / reduction_factor
# (here epoch 9 of 10): a trial drawn into it stops only there, by design.
PRUNE_BY_PRUNER = {"hyperband": EPOCHS - 1}
# Finished trials before the bad one: past the pruner's own startup, and for Hyperband enough in
# each of its brackets (trials are compared only within their bracket).
STARTUP_BY_PRUNER = {"hyperband": 12}


def _good(epoch: int, offset: float) -> float:
    return min(0.95, 0.5 + 0.04 * epoch + offset)


def _run_trial(study: optuna.Study, curve: Callable[[int], float]) -> int | None:
    """Report the curve epoch by epoch (1-based, as the worker does); the epoch pruned at, or None."""
    trial = study.ask()
    for epoch in range(1, EPOCHS + 1):
        trial.report(curve(epoch), epoch)
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return epoch
    study.tell(trial, curve(EPOCHS))
    return None


@pytest.mark.parametrize("name", sorted(PRUNERS))
def test_every_pruner_stops_a_clearly_bad_curve_and_keeps_the_best(name: str) -> None:
    pruner = build_pruner({"name": name})
    assert isinstance(pruner, PRUNERS[name][0])
    # A fixed name: Hyperband draws each trial's bracket from the study name and trial number.
    study = optuna.create_study(study_name="contract", direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=0))
    # Enough completed trials to get past the pruner's own startup, all with good curves.
    for i in range(STARTUP_BY_PRUNER.get(name, PRUNERS[name][1].get("n_startup_trials", 0) + 3)):
        _run_trial(study, lambda epoch, i=i: _good(epoch, 0.01 * i))
    bad = _run_trial(study, lambda epoch: 0.05)
    best = _run_trial(study, lambda epoch: _good(epoch, 0.2))
    assert best is None, f"{name} pruned the best trial at epoch {best}"
    if PRUNERS[name][0] is optuna.pruners.NopPruner:
        assert bad is None, f"{name} is the no-op pruner but pruned at epoch {bad}"
    else:
        by = PRUNE_BY_PRUNER.get(name, PRUNE_BY)
        assert bad is not None and bad <= by, f"{name} let a clearly bad trial run on (pruned at {bad})"


# --- data sources -----------------------------------------------------------------------

# A 6-mic ring (not the 4-mic default line) and 12 classes: the shape checks see the task's values.
TASK = TaskConfig(clip_samples=1024, n_fft=256, array=ArrayConfig(geometry="circular", n_mics=6),
                  n_angle_bins=12, n_train=8, n_val=4)
BAND = Band("3000", 3000.0, 900.0)
# Two tiny rooms (one held out), one source position each, short tails: simulated in well under a second.
TINY_ROOMS = Reverberant(rt60_s=(0.1, 0.15), distance_m=(0.8, 1.0), room_m=(3.0, 3.5), n_rooms=2,
                         held_out_rooms=1, positions_per_room=1)


def _folder_task(workdir: Path) -> TaskConfig:
    path = write_synthetic(TASK, workdir / "recordings", (2, 1), 0.2)  # 3 clips per recording
    index = index_folder(path, TASK.clip_samples, TASK.seed, 0.25)
    return task_for_folder(replace(TASK, sources=(Folder(path=str(path)),)), index)


# One setup per kind: the task (with that source alone) a contract test runs on.
SOURCE_SETUPS: dict[str, Callable[[Path], TaskConfig]] = {
    "free_field": lambda workdir: replace(TASK, sources=(FreeField(),)),
    "reverberant": lambda workdir: replace(TASK, sources=(TINY_ROOMS,)),
    "folder": _folder_task,
}


def test_every_source_kind_has_a_setup() -> None:
    assert set(SOURCE_SETUPS) == set(SOURCES), (
        f"add a setup to SOURCE_SETUPS for {sorted(set(SOURCES) - set(SOURCE_SETUPS))}")


def _clips(task: TaskConfig, split: str, seed: int, cache_dir: Path) -> Clips:
    (source,) = task.sources
    n = split_counts(task, split)[0]
    chunks = list(source.clips(task, BAND, split, n, torch.Generator().manual_seed(seed), cache_dir))
    return Clips(*(torch.cat([getattr(chunk, field) for chunk in chunks])
                   for field in ("waveforms", "angles_deg", "labels", "snr_db")))


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_every_source_yields_labelled_clips_of_the_declared_shape_repeatably(kind: str, tmp_path: Path) -> None:
    if kind not in SOURCE_SETUPS:
        pytest.fail(f"source kind {kind!r} has no entry in SOURCE_SETUPS")
    task = SOURCE_SETUPS[kind](tmp_path)
    task.validate()
    (source,) = task.sources
    assert isinstance(source, SOURCES[kind]) and source.kind == kind
    assert source_from_dict(to_dict(source)) == source  # how exports and trial attributes store it
    assert task.array.n_mics == 6
    for split in ("train", "val"):
        clips = _clips(task, split, seed=3, cache_dir=tmp_path / "cache")
        n = split_counts(task, split)[0]
        assert n > 0 and clips.waveforms.shape == (n, task.array.n_mics, task.clip_samples)
        assert clips.waveforms.dtype == torch.float32 and torch.isfinite(clips.waveforms).all()
        assert clips.waveforms.abs().amax(dim=(1, 2)).min() > 0  # no silent clip
        assert clips.labels.dtype == torch.int64 and clips.labels.shape == clips.angles_deg.shape == (n,)
        assert int(clips.labels.min()) >= 0 and int(clips.labels.max()) < task.n_angle_bins
        assert clips.snr_db.shape == (n,)
        again = _clips(task, split, seed=3, cache_dir=tmp_path / "cache")
        assert torch.equal(again.waveforms, clips.waveforms) and torch.equal(again.labels, clips.labels)
        assert torch.equal(again.angles_deg, clips.angles_deg)


# --- schedules --------------------------------------------------------------------------

STEPS_PER_EPOCH = 20
BASE_LR = 0.1


def _rates(name: str, epochs: int, warmup_epochs: int) -> list[float]:
    """The rate of every step of a training run, as the loop asks for it (progress in epochs)."""
    spec, h = SCHEDULES[name], resolve_schedule(name, {})
    steps = epochs * STEPS_PER_EPOCH
    return [warmup_then(spec.decay, k / STEPS_PER_EPOCH, (k + 1) / STEPS_PER_EPOCH, epochs, warmup_epochs,
                        BASE_LR, h) for k in range(steps)]


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_starts_at_the_base_rate_and_stays_finite_and_positive(name: str) -> None:
    rates = _rates(name, epochs=10, warmup_epochs=0)
    assert rates[0] == pytest.approx(BASE_LR)  # no warmup: the first step takes the full rate
    assert all(math.isfinite(rate) and 0 <= rate <= BASE_LR * (1 + 1e-12) for rate in rates)
    # The last step starts before the end of training: even a decay to zero still moves the weights.
    assert 0 < rates[-1] < math.inf
    end = SCHEDULES[name].decay(10.0, 10.0, resolve_schedule(name, {}))
    assert math.isfinite(end) and 0 <= end <= 1  # the factor at the very end of training


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_every_schedule_warms_up_linearly_to_the_base_rate(name: str) -> None:
    warmup_steps = 2 * STEPS_PER_EPOCH
    rates = _rates(name, epochs=10, warmup_epochs=2)
    # Linear: step k of the warmup takes base * (k + 1) / warmup steps, ending on the base rate.
    assert rates[:warmup_steps] == pytest.approx([BASE_LR * (k + 1) / warmup_steps for k in range(warmup_steps)])
    assert rates[0] == pytest.approx(BASE_LR / warmup_steps) and rates[warmup_steps - 1] == pytest.approx(BASE_LR)
    # Then the schedule starts from the base rate, with its decay measured from the end of warmup.
    assert rates[warmup_steps] == pytest.approx(BASE_LR)
    assert all(math.isfinite(rate) and 0 < rate <= BASE_LR * (1 + 1e-12) for rate in rates)


# --- CLI commands -----------------------------------------------------------------------


def _names(command: ModuleType) -> list[str]:
    """The subcommand name(s) a command module registers."""
    subparsers = argparse.ArgumentParser().add_subparsers()
    command.register(subparsers)
    return list(subparsers.choices)


def _module_id(command: ModuleType) -> str:
    return command.__name__.rsplit(".", 1)[-1]


@pytest.mark.parametrize("command", COMMANDS, ids=_module_id)
def test_every_command_has_help_and_is_in_the_readme(command: ModuleType, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    names = _names(command)
    assert names, f"{command.__name__}.register adds no subcommand"
    readme = README.read_text()
    for name in names:
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: bandsearch {name}") and "-h, --help" in out, out
        assert re.search(rf"`{re.escape(name)}`|bandsearch {re.escape(name)}(?![\w-])", readme), (
            f"README.md never mentions `{name}` (in backticks or as `bandsearch {name}`)")


def test_the_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exited:
        main(["--help"])  # formats every subcommand's one-line help
    assert exited.value.code == 0
    listing = capsys.readouterr().out
    for name in [name for command in COMMANDS for name in _names(command)]:
        assert re.search(rf"^\s+{re.escape(name)}\s", listing, re.MULTILINE), f"{name} missing from:\n{listing}"
