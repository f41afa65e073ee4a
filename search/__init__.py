"""The search service: Optuna studies per band, trials on Ray, every trial tracked in MLflow.

One module owns each outside system: Optuna storage (`storage`, with the record layout in
`studies`), Ray (`cluster`), MLflow (`tracking`); `uris` says what kind of URL a user gave.
`cli` and `commands/` are the door in; `driver/` runs a launch; `worker` runs one trial by
calling the objective in `objectives/`; `export`, `lr_tables`, `report` read a study back.
"""
