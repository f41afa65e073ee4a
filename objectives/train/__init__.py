"""The training half: config, model, the loop and its passes, dynamics, reporter, LR range test, optimizers."""
