"""Cross-band transfer: before a band's first trial, the `top_k` best trials of the source's
nearest bands (on a log-frequency axis) are enqueued. The source is an earlier study (seeded when
the band's study is created) or, under `from: neighbours`, this launch's other bands: they then
take turns middle-out, so each band after the first starts when a neighbour next to it has run.

Each enqueued trial keeps what this band's space can take of the source trial's parameters
(numbers clipped into its ranges, choices it does not offer dropped); with `lr_scaling: fitted`
its learning rate moves along the source's lr(f) fit, lr·(f / f_source)^exponent (search/lr_fit.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import optuna

from search.lr_fit import best_fits, centres_of
from search.params import Choice, Param, Range
from search.space import Space
from search.studies import open_band_studies, ranked
from search.transfer import TRANSFER_FROM, Transfer

if TYPE_CHECKING:
    from search.config import BandPlan
    from search.driver.bands import BandRun


def seed_from_study(study: optuna.Study, plan: BandPlan, transfer: Transfer, storage_url: str) -> int:
    """Seed a new band's study from the earlier study `transfer.study`; how many trials."""
    sources = open_band_studies(storage_url, transfer.study)
    return seed_band(study, plan.space, plan.band.center_hz, transfer, transfer.study, sources)


class Neighbours:
    """`from: neighbours`: which band gets the next trial. The bands take turns in
    `neighbour_order`, the next one starting once every trial of those before it is out (so no
    worker idles), and a band that has no trial yet is seeded from the others first."""

    def __init__(self, transfer: Transfer, study_name: str, bands: list[BandRun]):
        self.transfer, self.study_name = transfer, study_name
        by_name = {band.name: band for band in bands}
        self.order = [by_name[name] for name in neighbour_order({b.name: b.plan.band.center_hz for b in bands})]
        self.unseeded = {band.name for band in bands if not band.study.get_trials(deepcopy=False)}

    def next_band(self) -> BandRun | None:
        """The first band in turn with budget left (seeded if it is new); None when none has."""
        band = next((band for band in self.order if band.remaining > 0), None)
        if band is not None and band.name in self.unseeded:
            self.unseeded.discard(band.name)
            sources = {other.name: other.study for other in self.order if other is not band}
            seed_band(band.study, band.plan.space, band.plan.band.center_hz, self.transfer, self.study_name, sources)
        return band


def neighbour_order(centres: Mapping[str, float]) -> list[str]:
    """Middle out on a log-frequency axis: first the band nearest the middle of the range, then
    always the band nearest to one already placed, so each later band has a run neighbour."""
    logs = {band: math.log(hz) for band, hz in centres.items()}
    middle = (min(logs.values()) + max(logs.values())) / 2
    order = [min(logs, key=lambda band: abs(logs[band] - middle))]
    while len(order) < len(logs):
        order.append(min((band for band in logs if band not in order),
                         key=lambda band: min(abs(logs[band] - logs[placed]) for placed in order)))
    return order


def seed_band(study: optuna.Study, space: Space, centre_hz: float, transfer: Transfer, source: str,
              sources: dict[str, optuna.Study]) -> int:
    """Enqueue on `study` the `top_k` best finished trials of the nearest of `sources` (band
    studies of study `source`, by band name); how many."""
    if not sources:
        return 0
    centres = centres_of(sources)
    fits = best_fits(source, sources) if transfer.lr_scaling == "fitted" else {}
    named = space.named_params()
    enqueued = 0
    for band in sorted(sources, key=lambda b: abs(math.log(centres[b] / centre_hz))):
        for trial in ranked(sources[band]):
            if enqueued >= transfer.top_k:
                return enqueued
            optimizer = trial.params.get("optimizer") or next(iter(space.optimizers))
            if optimizer not in space.optimizers:
                continue
            factor = (centre_hz / centres[band]) ** fits[optimizer].line.slope if optimizer in fits else 1.0
            params = {name: value * factor if name in ("lr", f"{optimizer}.lr") else value
                      for name, value in trial.params.items()}
            kept = _fit_into(params, named)
            if kept is None:
                continue
            study.enqueue_trial(kept, user_attrs={TRANSFER_FROM: {
                "study": source, "band": band, "trial": trial.number, "lr_factor": factor}})
            enqueued += 1
    return enqueued


def _fit_into(params: Mapping[str, Any], named: Mapping[str, Param]) -> dict[str, Any] | None:
    """The parameters this space takes: numbers clipped into its ranges, choices it offers;
    None when the source's optimizer or schedule is not among this space's."""
    kept = {}
    for name, value in params.items():
        param = named.get(name)
        if isinstance(param, Choice):
            if value not in param.choices:
                if name in ("optimizer", "schedule"):
                    return None
                continue
            kept[name] = value
        elif isinstance(param, Range):
            clipped = min(max(value, param.low), param.high)
            kept[name] = int(round(clipped)) if param.integer else clipped
        elif param is not None:  # a range resolved at launch (lr from the finder or a fit): as it is
            kept[name] = value
    return kept
