"""Cross-band transfer at a band's first launch: the `top_k` best trials of the source study's
nearest bands (on a log-frequency axis) enqueued before anything is sampled. Each keeps what
this band's space can take of the source trial's parameters (numbers clipped into its ranges,
choices it does not offer dropped); with `lr_scaling: fitted` its learning rate moves along the
source study's lr(f) fit, lr·(f / f_source)^exponent (search/lr_fit.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import optuna

from search.lr_fit import band_centres, study_fits
from search.params import Choice, Param, Range
from search.space import Space
from search.studies import open_band_studies, ranked
from search.transfer import TRANSFER_FROM, Transfer


def seed_band(study: optuna.Study, space: Space, centre_hz: float, transfer: Transfer, storage_url: str) -> int:
    """Enqueue the `top_k` best trials of the source study's nearest bands on `study`; how many."""
    sources = open_band_studies(storage_url, transfer.study)
    centres = band_centres(storage_url, transfer.study)
    fits = study_fits(storage_url, transfer.study) if transfer.lr_scaling == "fitted" else {}
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
                "study": transfer.study, "band": band, "trial": trial.number, "lr_factor": factor}})
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
