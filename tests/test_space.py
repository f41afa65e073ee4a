"""Compiling spaces into Optuna suggestions: conditional parameters only where they apply."""

from __future__ import annotations

import optuna
import pytest
from conftest import tiny_config

from objectives.errors import InvalidConfig
from objectives.train.config import TrainConfig
from search.config import parse_config
from search.params import Choice, Fixed, Range
from search.space import parse_space


def _sample_many(space, n=40):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1), direction="maximize")
    draws = []
    for _ in range(n):
        trial = study.ask()
        draws.append((space.sample(trial), dict(trial.params)))
        study.tell(trial, 0.5)
    return draws


def test_conditional_parameters_are_sampled_only_for_their_optimizer() -> None:
    space = parse_space(tiny_config()["space"], n_train=400, epochs=3)
    draws = _sample_many(space)
    assert {config["optimizer"] for config, _ in draws} == {"sgd", "adam"}
    for config, params in draws:
        other = "adam" if config["optimizer"] == "sgd" else "sgd"
        assert not any(name.startswith(f"{other}.") for name in params)
        if config["optimizer"] == "sgd":
            assert set(config["optimizer_params"]) == {"momentum"}
            assert 1e-3 <= config["lr"] <= 0.3 and params["sgd.lr"] == config["lr"]
        else:
            assert set(config["optimizer_params"]) == {"beta1"}
            assert 1e-4 <= config["lr"] <= 1e-2
        assert config["batch_size"] in (32, 64) and config["warmup_epochs"] in (0, 1)


def test_constants_ranges_and_choices_parse_to_their_kinds() -> None:
    space = parse_space(
        {"optimizer": {"sgd": {"nesterov": True, "momentum": 0.9}}, "lr": {"low": 0.01, "high": 0.1},
         "batch_size": 64, "warmup_epochs": {"low": 0, "high": 2}},
        n_train=100, epochs=5,
    )
    assert space.optimizers["sgd"] == {"nesterov": Fixed(True), "momentum": Fixed(0.9)}
    assert space.common["lr"] == Range(0.01, 0.1)
    assert space.common["batch_size"] == Fixed(64)
    assert space.common["warmup_epochs"] == Range(0, 2, integer=True)
    config, params = _sample_many(space, n=1)[0]
    assert config["optimizer"] == "sgd" and "optimizer" not in params  # a single choice is not searched
    assert config["optimizer_params"] == {"nesterov": True, "momentum": 0.9}
    assert parse_space({"optimizer": "adam"}, 10, 1).optimizers == {"adam": {}}
    assert isinstance(parse_space({"optimizer": {"choices": ["adam", "sgd"]}}, 10, 1).optimizers, dict)
    single = parse_space({"optimizer": "adam", "batch_size": {"choices": [8]}}, 10, 1)
    assert single.common["batch_size"] == Choice((8,))


def test_warmup_longer_than_training_is_rejected() -> None:
    with pytest.raises(InvalidConfig, match="warmup_epochs"):
        parse_space({"optimizer": "adam", "warmup_epochs": {"low": 0, "high": 9}}, n_train=100, epochs=3)


def test_bands_may_override_the_space() -> None:
    data = tiny_config(bands=[
        {"name": "low", "center_hz": 500, "space": {"lr": {"low": 0.01, "high": 0.02}, "optimizer": "adam"}},
        {"name": "high", "center_hz": 3000},
    ])
    config = parse_config(data, source="inline")
    low, high = config.bands
    assert list(low.space.optimizers) == ["adam"] and low.space.common["lr"] == Range(0.01, 0.02)
    assert set(high.space.optimizers) == {"sgd", "adam"} and "lr" not in high.space.common


def test_schedules_clipping_and_ramp_are_searched_conditionally() -> None:
    space = parse_space(
        {"optimizer": {"svrg": {"interval": {"choices": ["epoch", 20]}},
                       "adam_sgd": {"switch_epoch": {"low": 2, "high": 3}}},
         "schedule": {"cosine": {}, "step": {"gamma": {"low": 0.1, "high": 0.5}, "every_epochs": 2}},
         "clip_norm": {"choices": [None, 1.0]}, "ramp_from_batch_size": {"choices": [None, 16]}, "ramp_epochs": 2,
         "batch_size": 64},
        n_train=400, epochs=3,
    )
    draws = _sample_many(space)
    assert {config["schedule"] for config, _ in draws} == {"cosine", "step"}
    assert {config["clip_norm"] for config, _ in draws} == {None, 1.0}
    for config, params in draws:
        if config["schedule"] == "step":
            assert 0.1 <= params["step.gamma"] <= 0.5 and config["schedule_params"]["every_epochs"] == 2
        else:
            assert config["schedule_params"] == {} and not any(name.startswith("step.") for name in params)
        if config["optimizer"] == "adam_sgd":
            assert config["optimizer_params"]["switch_epoch"] in (2, 3)
        else:
            assert config["optimizer_params"]["interval"] in ("epoch", 20)
        TrainConfig(epochs=3, **config).validate(400)


def test_resolving_a_finder_lr_keeps_the_chosen_schedules() -> None:
    space = parse_space(
        {"optimizer": {"sgd": {"momentum": {"low": 0.5, "high": 0.95}}, "adam": {}},
         "lr": {"from": "lr_finder", "factor": 4},
         "schedule": {"cosine": {}, "step": {"gamma": {"low": 0.1, "high": 0.5}, "every_epochs": 2}}},
        n_train=400, epochs=3,
    )
    assert space.finder_optimizers() == ["sgd", "adam"]
    resolved = space.resolve({"sgd": 0.04, "adam": 2e-3})
    assert resolved.schedules == space.schedules and set(resolved.schedules) == {"cosine", "step"}
    assert "lr" not in resolved.common
    assert resolved.optimizers["sgd"]["lr"] == Range(0.01, 0.16, log=True)
    draws = _sample_many(resolved)
    assert {config["schedule"] for config, _ in draws} == {"cosine", "step"}
    for config, params in draws:
        low, high = (0.01, 0.16) if config["optimizer"] == "sgd" else (5e-4, 8e-3)
        assert low <= config["lr"] <= high
        if config["schedule"] == "step":
            assert 0.1 <= params["step.gamma"] <= 0.5 and config["schedule_params"]["every_epochs"] == 2
        else:
            assert config["schedule_params"] == {} and "step.gamma" not in params
        TrainConfig(epochs=3, **config).validate(400)


def test_a_finder_lr_under_a_schedule_is_refused_at_parse_time() -> None:
    space = {"optimizer": "adam", "schedule": {"step": {"lr": {"from": "lr_finder", "factor": 4}}}}
    with pytest.raises(InvalidConfig, match=r"schedule\.step\.lr: .*not under a schedule"):
        parse_space(space, n_train=400, epochs=3)
