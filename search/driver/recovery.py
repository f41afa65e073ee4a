"""What a dead driver left behind, cleaned up when the same study is launched again.

Trials it left RUNNING are failed as `lost` (and so retried with their parameters); MLflow
trial runs it left open are closed with the status their trial ended with, a pruned one renamed
as the driver would have (also runs it had created but not yet linked to their trial).
Finished trials are counted towards the budget.
"""

from __future__ import annotations

from optuna.trial import TrialState

from search.driver.bands import BandRun
from search.driver.outcomes import RUN_STATUS, Outcomes
from search.driver.run_params import run_name
from search.outbox import Outbox
from search.studies import RETRIED, RUN_ID, STOP_REASON, TRAIN_CONFIG, live_trial


def recover(band: BandRun, outbox: Outbox, open_runs: dict[str, int], outcomes: Outcomes) -> None:
    """Count what is done in `band`, fail and retry its orphaned trials, close its `open_runs`
    (MLflow runs still RUNNING: run id -> trial number)."""
    trials = band.study.get_trials(deepcopy=False)
    states = {frozen.number: frozen.state for frozen in trials}
    for frozen in trials:
        if frozen.state == TrialState.RUNNING:
            run_id = frozen.user_attrs.get(RUN_ID, "")
            outcomes.fail(band, live_trial(band.study, frozen), run_id or None, "lost",
                          "the driver stopped while this trial ran")
            open_runs.pop(run_id, None)
        elif frozen.state == TrialState.COMPLETE:
            band.counts["complete"] += 1
        elif frozen.state == TrialState.PRUNED:
            band.counts["diverged" if frozen.user_attrs.get(STOP_REASON) == "diverged" else "pruned"] += 1
        elif frozen.state == TrialState.FAIL:
            band.counts["lost" if frozen.user_attrs.get(RETRIED) else "failed"] += 1
    pruned = {t.number: run_name(t.number, t.user_attrs[TRAIN_CONFIG], t.user_attrs.get(STOP_REASON, "pruned"))
              for t in trials if t.state == TrialState.PRUNED and TRAIN_CONFIG in t.user_attrs}
    for run_id, number in open_runs.items():
        outbox.log(run_id, tags={"bandsearch.closed_by": "recovery: the driver stopped before closing it"})
        outbox.finish(run_id, RUN_STATUS.get(states.get(number), "FAILED"), name=pruned.get(number))
