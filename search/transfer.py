"""Cross-band transfer settings and lineage: a new band's study starts from the best
configurations of the nearest bands, of an earlier study or of this launch's bands that ran
before it (search/driver/transfer.py enqueues them and orders the bands).

    search:
      transfer: {from: {study: NAME}, top_k: 3, lr_scaling: fitted}
      transfer: {from: neighbours, top_k: 3, lr_scaling: fitted}

An enqueued trial's lineage (study, band, trial, lr factor) is an Optuna user attribute and an
MLflow tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from objectives.errors import InvalidConfig
from search.studies import RETRY_OF

TRANSFER_FROM = "transfer_from"  # the Optuna user attribute of an enqueued trial: its lineage
SCALINGS = ("fitted", "none")


NEIGHBOURS = "neighbours"


@dataclass(frozen=True)
class Transfer:
    study: str | None  # the earlier study; None: this launch's bands (`from: neighbours`)
    top_k: int = 3
    lr_scaling: str = "fitted"


def parse_transfer(raw: Any) -> Transfer | None:
    """`search.transfer` (None: every band starts cold); InvalidConfig keys relative to it."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidConfig("transfer", f"must be a mapping such as {{from: neighbours, top_k: 3}}, got {raw!r}")
    unknown = sorted(set(raw) - {"from", "top_k", "lr_scaling"})
    if unknown:
        raise InvalidConfig(f"transfer.{unknown[0]}", "unknown key; transfer takes from, top_k, lr_scaling")
    source = raw.get("from")
    if source != NEIGHBOURS and not (isinstance(source, Mapping) and set(source) == {"study"}
                                     and isinstance(source["study"], str)):
        raise InvalidConfig("transfer.from", f"must be {NEIGHBOURS} (this launch's bands) or {{study: NAME}} "
                            f"(an earlier study), got {source!r}")
    top_k, scaling = raw.get("top_k", 3), raw.get("lr_scaling", "fitted")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InvalidConfig("transfer.top_k", f"must be a whole number >= 1, got {top_k!r}")
    if scaling not in SCALINGS:
        raise InvalidConfig("transfer.lr_scaling", f"must be one of {list(SCALINGS)}, got {scaling!r}")
    return Transfer(None if source == NEIGHBOURS else source["study"], top_k, scaling)


def lineage_tags(user_attrs: Mapping[str, Any]) -> dict[str, str]:
    """MLflow tags that say where a trial came from: the trial it retries, the trial it transfers."""
    tags = {"bandsearch.retry_of": user_attrs[RETRY_OF]} if RETRY_OF in user_attrs else {}
    if source := user_attrs.get(TRANSFER_FROM):
        tags["bandsearch.transfer_from"] = (f"{source['study']}/{source['band']} trial {source['trial']} "
                                            f"(lr x {source['lr_factor']:.3g})")
    return tags
