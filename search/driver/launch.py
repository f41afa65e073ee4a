"""The whole launch in one call: create or resume the study, run every band to its budget,
then refresh the per-frequency learning-rate tables in MLflow."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from search import ray_connection
from search.config import StudyConfig
from search.driver.bands import BandRun, summary_row
from search.driver.loop import Launch
from search.driver.seams import Progress
from search.driver.start import start
from search.lease import Lease
from search.lr_fit import log_with_fit
from search.lr_tables import finder_table, study_table
from search.settings import Settings
from search.uris import mask

log = logging.getLogger(__name__)


def launch(config: StudyConfig, study_name: str, settings: Settings, progress: Progress | None = None,
           address: str | None = None, num_cpus: int | None = None, take_over: bool = False,
           started: bool = False) -> list[BandRun]:
    """Create or resume the study and run every band to its budget, holding the study's lease
    (search/lease.py) from before recovery to the last trial; `take_over` takes an expired one.
    `started`: the caller has run search/driver/start.py `start` for this config (the CLI does, before
    loading the driver), so its model check and Ray join are not repeated."""
    # What cannot work is refused before anything is created (the MLflow store, the storage);
    # Ray is joined in the background while the study is prepared; a failed launch stops what
    # it started.
    joined_here = not started and start(config, address, num_cpus)
    try:
        run = Launch(config, study_name, settings, progress)
        run.tracker.tracker.check()
        with Lease(settings.storage_url, study_name).hold(take_over):
            run.prepare()
            bands = run.run(address=address, num_cpus=num_cpus)
    except BaseException:
        if joined_here:
            ray_connection.disconnect()
        raise
    publish_tables(settings, study_name)
    return bands


def publish_tables(settings: Settings, study_name: str) -> None:
    """Log the per-frequency learning-rate tables of the study and their lr(f) fits to MLflow. A
    finished study never fails on this: they can be logged again with `bandsearch lr-table`."""
    tables = [study_table(settings.storage_url, study_name), finder_table(settings.storage_url, study_name)]
    try:
        log_with_fit(settings, study_name, [t for t in tables if t.cells])
    except Exception as err:  # MLflow down at the very end: the study itself is complete
        log.warning("could not log the learning-rate tables to MLflow (%s); run `bandsearch lr-table %s` later",
                    mask(str(err)), study_name)


def summarize(bands: Iterable[BandRun]) -> list[dict[str, Any]]:
    return [summary_row(band) for band in bands]
