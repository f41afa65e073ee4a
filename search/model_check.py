"""The study's model tried on each band's feature shape before anything starts: a model that
cannot build, or returns the wrong shape, is a configuration error, not a study of failed trials."""

from __future__ import annotations

from objectives.errors import InvalidConfig
from objectives.task.features import feature_shape
from objectives.train.models import check_output
from search.config import StudyConfig
from search.errors import BandsearchError


def check_models(config: StudyConfig) -> None:
    """training.model on a dummy batch of each band's features (torch: seconds, once per launch)."""
    model = config.training.model
    for plan in config.bands:
        shape = feature_shape(config.task, plan.band, model.feature_kind)
        try:
            check_output(model, shape, config.task.n_angle_bins)
        except InvalidConfig as err:
            raise BandsearchError(f"{config.source}: training.model.{err.key}: {err.message} "
                                  f"(band {plan.band.name})") from None
