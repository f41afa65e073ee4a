"""The audio angle (direction of arrival) task, in two halves that know nothing of the search service.

- `objectives.task`: what a band's data is: the array and bands (`config`, `array`,
  `geometry`), where clips come from (`sources/`, one module per kind), synthesis,
  features, the cached per-band dataset, and the classical baselines.
- `objectives.train`: one training run: its config, the model, the loop and its passes,
  flat parameters, dynamics, the reporter, the LR range test, and `optim/` (the optimizer
  table, hyperparameter checks, schedules, SVRG, Adam then SGD).
- `objectives.localizer`: a trained network with its band's features and their standardisation,
  saved to one file and loaded as waveforms -> azimuths.

`objectives.errors.InvalidConfig` is the one error type of both. Plain torch and
torchaudio only: no Optuna, Ray or MLflow (tests/test_imports.py checks). Runs alone with
`python -m objectives`.
"""
