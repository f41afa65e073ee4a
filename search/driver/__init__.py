"""The driver: one Optuna study per band, W trials in flight on Ray, results told back.

Read in this order:
- `bands.py`: a band's study created or resumed (a resume must match what it was created
  from), its MLflow parent run, and what has happened in it so far (`BandRun`).
- `recovery.py`: a dead driver's leftovers: trials left RUNNING are failed and retried, MLflow
  runs left open are closed.
- `start.py`: the model checked, then Ray joined in the background. `connect.py`: the wait
  for Ray, the storage proxy, the check that every node reaches the storage and MLflow, each
  band's dataset built once, and `lr: {from: lr_finder}` ranges resolved.
- `loop.py`: `Launch`, the scheduling loop: ask and sample a trial, open its MLflow run,
  submit it, and keep W in flight until every band has its budget; `seams.py`: where trials
  run (`TrialRunner`) and who hears of progress.
- `outcomes.py`: how a trial's end maps to Optuna and MLflow states, with retries;
  `run_params.py`: how its config reads in MLflow (run name, flat params).

Optuna's storage is the source of truth; MLflow is the record people browse. The driver owns
every run's lifecycle, so a crashed worker never leaves a run (or a trial) RUNNING. MLflow
writes go through an Outbox (search/outbox.py), sent from its own thread: neither a slow nor an absent
MLflow delays a trial.
"""
