"""The model table: a name, the features it reads, its settings with defaults, how to build it.

`training: {model: {name: cnn, channels: 16}}` picks a built-in; `training: {model: {factory:
"my_nets:build", features: frames, ...}}` the user's own `build(input_shape, n_classes,
**settings) -> torch.nn.Module`. Every model gets the band's feature shape without the batch
dimension and returns logits of shape (batch, n_classes). Adding a built-in is one `MODELS`
entry. torch is imported when a model is built, never to validate a config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from objectives.errors import InvalidConfig
from objectives.user_code import load_callable, shippable

if TYPE_CHECKING:
    from torch import nn

# What a model reads: one vector per clip (averaged over frames: mics' log power, then the cos and
# sin of each mic's phase against mic 0), the same per frame, (channels, bins, frames), or one
# vector of every mic pair's whitened phase, or SRP-PHAT's and MUSIC's response per bin over a circle
# of directions, (2, bins, directions) (objectives/task/features.py).
FEATURE_KINDS = ("averaged", "frames", "pairs", "steered")
_RESERVED = ("name", "factory", "features", "code_dir")


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., nn.Module]  # (input_shape, n_classes, **settings)
    features: str
    defaults: Mapping[str, Any]
    integers: tuple[str, ...] = ()  # settings that must be whole numbers >= 1


def _mlp(shape: tuple[int, ...], n_classes: int, **settings: Any) -> nn.Module:
    from objectives.train.models.mlp import build_mlp

    return build_mlp(shape, n_classes, **settings)


def _steered_cnn(shape: tuple[int, ...], n_classes: int, **settings: Any) -> nn.Module:
    from objectives.train.models.steered_cnn import SteeredResponseCNN

    return SteeredResponseCNN(shape, n_classes, **settings)


def _frame_net(kind: str) -> Callable[..., nn.Module]:
    def build(shape: tuple[int, ...], n_classes: int, **settings: Any) -> nn.Module:
        from objectives.train.models import frame_nets

        return getattr(frame_nets, kind)(shape, n_classes, **settings)

    return build


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(_mlp, "averaged", {"hidden": 128, "dropout": 0.1}, integers=("hidden",)),
    # The same MLP on every mic pair's whitened phase, the statistic SRP-PHAT steers.
    "pair_mlp": ModelSpec(_mlp, "pairs", {"hidden": 256, "dropout": 0.2}, integers=("hidden",)),
    # Phase-map CNN (Chakrabarty & Habets): convolutions across each frame's bins, class
    # posteriors per frame, averaged over the frames.
    "cnn": ModelSpec(_frame_net("PhaseMapCNN"), "frames",
                     {"channels": 16, "layers": 1, "kernel": 3, "hidden": 32, "dropout": 0.1, "frame_pool": 5},
                     integers=("channels", "layers", "kernel", "hidden", "frame_pool")),
    # The same per-frame convolutions, then a GRU over the frames.
    "crnn": ModelSpec(_frame_net("CRNN"), "frames",
                      {"channels": 16, "layers": 1, "kernel": 3, "hidden": 32, "dropout": 0.1, "frame_pool": 3},
                      integers=("channels", "layers", "kernel", "hidden", "frame_pool")),
    # Circular convolutions over SRP-PHAT's and MUSIC's per-bin responses, one logit per direction.
    "steered_cnn": ModelSpec(_steered_cnn, "steered", {"channels": 32, "layers": 2, "kernel": 5, "dropout": 0.1},
                             integers=("channels", "layers", "kernel")),
}


@dataclass(frozen=True)
class ModelConfig:
    """A built-in model by `name`, or the user's `factory` ("module:function", found in `code_dir`,
    the study YAML's folder, or on PYTHONPATH) reading `features`; `settings` are its keyword
    arguments (a built-in's defaults fill the rest)."""

    name: str = "mlp"
    settings: Mapping[str, Any] = field(default_factory=dict)
    factory: str | None = None
    features: str = "averaged"
    code_dir: str | None = None

    @property
    def feature_kind(self) -> str:
        return self.features if self.factory else MODELS[self.name].features

    def resolved(self) -> dict[str, Any]:
        """The keyword arguments the model is built with."""
        return dict(self.settings) if self.factory else {**MODELS[self.name].defaults, **self.settings}

    def plain(self) -> dict[str, Any]:
        """The YAML form, as stored with a trial: `{name: cnn, channels: 16}`."""
        if self.factory:
            return {"factory": self.factory, "features": self.features, **self.settings,
                    **({"code_dir": self.code_dir} if self.code_dir else {})}
        return {"name": self.name, **self.settings}

    def py_modules(self) -> list[str]:
        """The user's module Ray must copy to every node (the factory's); none for a built-in."""
        return shippable([self.factory], self.code_dir) if self.factory else []

    def with_settings(self, settings: Mapping[str, Any]) -> ModelConfig:
        return ModelConfig(self.name, {**self.settings, **settings}, self.factory, self.features, self.code_dir)

    def validate(self) -> None:
        if self.factory:
            if self.features not in FEATURE_KINDS:
                raise InvalidConfig("features", f"must be one of {list(FEATURE_KINDS)}, got {self.features!r}")
            load_callable(self.factory, "factory", self.code_dir)
            return
        if self.name not in MODELS:
            raise InvalidConfig("name", f"unknown model {self.name!r}; choose from {sorted(MODELS)} or give "
                                '`factory: "module:function"` for your own')
        for key, value in self.settings.items():
            check_setting(self.name, key, value)


def check_setting(name: str, key: str, value: Any) -> None:
    """A built-in model's setting: known, and in range (InvalidConfig naming `key`)."""
    spec = MODELS[name]
    if key not in spec.defaults:
        raise InvalidConfig(key, f"unknown setting of model {name}; it takes {sorted(spec.defaults)}")
    if key in spec.integers and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise InvalidConfig(key, f"must be a whole number >= 1, got {value!r}")
    if key == "dropout" and not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
        raise InvalidConfig(key, f"must be in [0, 1), got {value!r}")


def model_from_dict(data: Any) -> ModelConfig:
    """`{name: cnn, channels: 16}` or `{factory: "my_nets:build", features: frames, width: 64}`
    (a trial recorded before the table existed has `{hidden, dropout}`: the MLP's)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidConfig("model", f'must be a mapping such as {{name: cnn}} or {{factory: "my_nets:build"}}, '
                            f"got {data!r}")
    settings = {key: value for key, value in data.items() if key not in _RESERVED}
    if "factory" in data:
        if "name" in data:
            raise InvalidConfig("name", "give either name (a built-in model) or factory (your own), not both")
        return ModelConfig(name="", settings=settings, factory=data["factory"],
                           features=data.get("features", "averaged"), code_dir=data.get("code_dir"))
    if "features" in data:
        raise InvalidConfig("features", "only with factory: a built-in model declares its own features")
    return ModelConfig(name=data.get("name", "mlp"), settings=settings)


def check_output(config: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
    """Build the model and run a batch of two silent clips through it: InvalidConfig (naming
    `factory` or `name`) unless it builds and returns logits of shape (2, n_classes)."""
    import torch

    key = "factory" if config.factory else "name"
    what = config.factory or config.name
    try:
        model = build_model(config, input_shape, n_classes)
        if not isinstance(model, torch.nn.Module):
            raise InvalidConfig(key, f"{what} returned {type(model).__name__}, not a torch.nn.Module")
        with torch.no_grad():
            output = model.eval()(torch.zeros(2, *input_shape))
    except InvalidConfig:
        raise
    except Exception as err:
        raise InvalidConfig(key, f"{what} failed on input shape {tuple(input_shape)} and {n_classes} classes "
                            f"(build(input_shape, n_classes, **settings), then a batch of 2): "
                            f"{type(err).__name__}: {err}") from None
    if tuple(getattr(output, "shape", ())) != (2, n_classes):
        raise InvalidConfig(key, f"{what} returns shape {tuple(getattr(output, 'shape', ()))} for a batch of 2 "
                            f"clips of shape {tuple(input_shape)}; it must return logits of shape (2, {n_classes}) "
                            "(batch, n_classes)")


def build_model(config: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The model `config` names for inputs of `input_shape` (without the batch dimension)."""
    if config.factory:
        return load_callable(config.factory, "model.factory", config.code_dir)(
            tuple(input_shape), n_classes, **config.resolved())
    return MODELS[config.name].build(tuple(input_shape), n_classes, **config.resolved())
