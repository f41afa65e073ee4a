"""Before the first trial: join Ray, serve the storage if asked, check that every node reaches
the storage and MLflow, start building each band's dataset (once, shared by its trials) and
resolve `lr: {from: lr_finder}` ranges, running the range tests that are missing."""

from __future__ import annotations

import dataclasses
import time

from objectives.errors import InvalidConfig
from objectives.user_code import import_problems
from search import cluster, reach
from search.config import StudyConfig
from search.driver.bands import BandRun
from search.errors import BandsearchError
from search.lr_finder import LrFinder
from search.lr_fit import LrFit, study_fits
from search.params import FromFit
from search.proxy import StorageProxy
from search.settings import Settings
from search.storage import open_storage


def serve_storage(settings: Settings) -> StorageProxy:
    """The driver's gRPC storage proxy for the workers (`--storage-proxy`), started."""
    proxy = StorageProxy(open_storage(settings.storage_url), settings.storage_proxy)
    proxy.start()
    return proxy


def check_reach(storage_url: str, tracking_uri: str) -> None:
    """On a multi-node cluster, every node must reach the storage and MLflow before any trial."""
    if cluster.node_count() > 1:
        reach.require(cluster.on_every_node, {"the study storage": storage_url, "MLflow": tracking_uri})


def check_user_code(config: StudyConfig) -> None:
    """The user's model factory must import on every node (its module is shipped; what it
    imports must be installed there)."""
    model = config.training.model
    if not model.factory:
        return
    results = cluster.on_every_node(import_problems, {"training.model.factory": model.factory})
    lines = [f"  node {node}: {problem}" for node, problems in results.items() for problem in problems]
    if lines:
        raise BandsearchError(f"{config.source}: the user's code does not import on every node of the Ray "
                              "cluster:\n" + "\n".join(lines) + "\nInstall what it imports on every node "
                              "(or in the cluster's image).")


def start_datasets(config: StudyConfig, settings: Settings, bands: list[BandRun]) -> None:
    """Start building the dataset of each band that has none yet; trials get the references."""
    missing = [band for band in bands if band.data is None]
    refs = cluster.datasets(config.task, [band.plan.band for band in missing], settings.cache_dir,
                            config.training.model.feature_kind)
    for band in missing:
        band.data = refs[band.name]
        band.started = time.monotonic()


def resolve_lr_ranges(config: StudyConfig, study_name: str, settings: Settings, bands: list[BandRun]) -> None:
    """Resolve lr ranges taken from elsewhere: `{from: lr_finder}` (running the range tests that
    are missing) and `{from: lr_fit, study: NAME}` (NAME's fit, in the same storage, predicted at
    each band's centre)."""
    if not any(band.plan.space.lr_sources() for band in bands):
        return
    needs = {band.name: band.plan.space.finder_optimizers() for band in bands}
    results = {}
    if any(needs.values()):
        finder = LrFinder(config, study_name, settings)
        results = finder.run(finder.tasks({name: opts for name, opts in needs.items() if opts}),
                             {band.name: band.data for band in bands})
    fits: dict[str, dict[str, LrFit]] = {}  # by study named in a space
    for band in bands:
        suggestions = {task.optimizer: (result or {}).get("suggestion")
                       for task, result in results.items() if task.band == band.name}
        for optimizer, source in band.plan.space.lr_sources().items():
            if isinstance(source, FromFit):
                if source.study not in fits:
                    fits[source.study] = study_fits(settings.storage_url, source.study)
                fit = fits[source.study].get(optimizer)
                suggestions[optimizer] = fit.predict(band.plan.band.center_hz)[0] if fit else None
        try:
            space = band.plan.space.resolve(suggestions)
        except InvalidConfig as err:
            raise BandsearchError(f"{config.source}: bands {band.name}: space.{err.key}: {err.message}") from None
        band.plan = dataclasses.replace(band.plan, space=space)
