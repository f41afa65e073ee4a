"""Your own objective, the worked example of spaces/custom_objective.yaml: multinomial logistic
regression on a band's features, trained with the sampled optimizer and learning rate, and
judged on validation cross-entropy (`val_loss`, minimised).

bandsearch imports `run` beside the study YAML (or from PYTHONPATH), ships this file to every
Ray node and calls it once per trial; it may use anything installed, it never sees Optuna,
Ray or MLflow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The optimizers this space searches: torch's own classes, with the space's names for their settings.
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def _optimizer(config: dict, parameters) -> torch.optim.Optimizer:
    settings = dict(config["optimizer_params"])  # only what the space sampled for this optimizer
    if "beta1" in settings or "beta2" in settings:
        settings["betas"] = (settings.pop("beta1", 0.9), settings.pop("beta2", 0.999))
    return OPTIMIZERS[config["optimizer"]](parameters, lr=config["lr"], **settings)


@torch.no_grad()
def _scores(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    logits = model(x)
    return {"val_loss": F.cross_entropy(logits, y).item(),
            "val_accuracy": (logits.argmax(dim=1) == y).float().mean().item()}


def run(config: dict, data, reporter) -> dict[str, float]:
    """Train on `data` (train_x, train_y, val_x, val_y, n_classes) with the trial's `config`
    (optimizer, lr, optimizer_params, batch_size, epochs, seed, ...); report every epoch
    (the reporter may stop a pruned trial by raising); return the final metrics."""
    torch.manual_seed(config["seed"])
    shuffle = torch.Generator().manual_seed(config["seed"])
    model = torch.nn.Linear(data.train_x.shape[1], data.n_classes)
    optimizer = _optimizer(config, model.parameters())
    batch = config["batch_size"]
    scores: dict[str, float] = {}
    for epoch in range(1, config["epochs"] + 1):
        order = torch.randperm(len(data.train_x), generator=shuffle)
        for start in range(0, len(order) - batch + 1, batch):
            rows = order[start : start + batch]
            loss = F.cross_entropy(model(data.train_x[rows]), data.train_y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scores = _scores(model, data.val_x, data.val_y)
        reporter.report(epoch, scores)
    return scores
