"""The seed findings and epochs to the target, judged on hand-built re-runs (no training, no Ray)."""

from __future__ import annotations

import pytest

from objectives.train.config import Target
from search import findings, targets
from search.findings import DOES_NOT_HOLD, HOLDS, UNDECIDED
from search.report import Rerun


def _rerun(band: str, optimizer: str, accuracies: list[list[float]], **summary: list[float]) -> Rerun:
    """One re-run: per seed its validation accuracy per epoch, and `summary.<key>` values per seed."""
    rerun = Rerun(band, optimizer, {}, 0.0)
    rerun.histories = [[{"epoch": e + 1, "val_accuracy": a} for e, a in enumerate(seed)] for seed in accuracies]
    rerun.summaries = [{f"summary.{key}": values[i] for key, values in summary.items()} for i in range(len(accuracies))]
    return rerun


def _curves(first: list[float], final: float = 0.8) -> list[list[float]]:
    return [[a, final] for a in first]


def test_adam_fastest_early_holds_fails_or_stays_undecided() -> None:
    def verdict(adam_first: list[float], sgd_first: list[float]) -> str:
        by_band = {"500": [_rerun("500", "adam", _curves(adam_first)), _rerun("500", "sgd", _curves(sgd_first))]}
        return findings.adam_fastest_early(by_band).verdict

    assert verdict([0.60, 0.61, 0.62], [0.40, 0.41, 0.42]) == HOLDS
    assert verdict([0.40, 0.41, 0.42], [0.60, 0.61, 0.62]) == DOES_NOT_HOLD
    assert verdict([0.40, 0.60, 0.50], [0.45, 0.55, 0.65]) == UNDECIDED


def test_a_finding_holds_only_where_it_holds_in_every_band() -> None:
    by_band = {"500": [_rerun("500", "adam", _curves([0.60, 0.61, 0.62])),
                       _rerun("500", "sgd", _curves([0.40, 0.41, 0.42]))],
               "3000": [_rerun("3000", "adam", _curves([0.50, 0.70, 0.60])),
                        _rerun("3000", "sgd", _curves([0.55, 0.65, 0.60]))]}
    finding = findings.adam_fastest_early(by_band)
    assert finding.verdict == UNDECIDED
    assert "band 500 Hz validation accuracy after epoch 1: adam 0.610 ± 0.025, sgd 0.410 ± 0.025" in finding.evidence


def test_sgd_most_accurate_compares_final_accuracy() -> None:
    by_band = {"500": [_rerun("500", "sgd", [[0.5, 0.90], [0.5, 0.91], [0.5, 0.92]]),
                       _rerun("500", "adam", [[0.7, 0.80], [0.7, 0.81], [0.7, 0.82]])]}
    assert findings.sgd_most_accurate(by_band).verdict == HOLDS
    assert findings.adam_fastest_early(by_band).verdict == HOLDS


def test_not_tested_names_the_missing_optimizer() -> None:
    by_band = {"500": [_rerun("500", "adam", _curves([0.6, 0.6, 0.6]))]}
    assert findings.svrg_slowest_and_largest(by_band).verdict == "not tested (no svrg trials)"
    assert findings.sgd_most_accurate(by_band).verdict == "not tested (no sgd trials)"
    assert findings.cosine_trends(by_band).verdict == "not tested (no sgd trials)"
    assert findings.adam_fastest_early(by_band).verdict == "not tested (no other optimizer in adam's bands)"
    assert findings.higher_bands_easier(by_band, {"500": 500.0}, {}).verdict == "not tested (one band)"


def test_higher_bands_need_both_more_accuracy_and_an_earlier_target() -> None:
    def study(seeds: int, low_epoch: int) -> findings.Finding:
        low = [0.1] * (low_epoch - 1) + [0.80] * (9 - low_epoch)
        high = [0.1, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]
        by_band = {"500": [_rerun("500", "sgd", [[*low[:-1], 0.80 + i / 100] for i in range(seeds)])],
                   "3000": [_rerun("3000", "sgd", [[*high[:-1], 0.95 + i / 100] for i in range(seeds)])]}
        _, times = targets.band_times(by_band, Target(fraction_of_best=0.9))
        return findings.higher_bands_easier(by_band, {"500": 500.0, "3000": 3000.0}, times)

    assert study(seeds=5, low_epoch=6).verdict == HOLDS  # epoch 6 against 2, five seeds each
    # Three seeds each: the exact log-rank p is at best 0.1, so the epochs part cannot decide.
    assert study(seeds=3, low_epoch=6).verdict == UNDECIDED
    # The low band reaching its own target in epoch 1, before the high band's 2: the opposite.
    assert study(seeds=5, low_epoch=1).verdict == DOES_NOT_HOLD


def test_svrg_slowest_and_largest_needs_both_time_and_memory() -> None:
    def verdict(svrg_bytes: float) -> str:
        seeds = _curves([0.5, 0.5, 0.5])
        step = {"time_forward_ms": [1.0] * 3, "time_backward_ms": [2.0] * 3}
        by_band = {"500": [_rerun("500", "svrg", seeds, **step, time_update_ms=[3.0, 3.1, 3.2],
                                  memory_state_bytes=[svrg_bytes] * 3),
                           _rerun("500", "adam", seeds, **step, time_update_ms=[1.0, 1.1, 1.2],
                                  memory_state_bytes=[2000.0] * 3)]}
        return findings.svrg_slowest_and_largest(by_band).verdict

    assert verdict(3000.0) == HOLDS
    assert verdict(1000.0) == DOES_NOT_HOLD  # state bytes are exact: a zero-width interval below adam's
    assert verdict(2000.0) == UNDECIDED  # a tie in memory makes no claim either way


def test_cosine_grows_for_sgd_and_stays_high_for_adam() -> None:
    def verdict(sgd_late: list[float]) -> str:
        seeds = _curves([0.5, 0.5, 0.5])
        by_band = {"500": [
            _rerun("500", "sgd", seeds, grad_cosine_early=[0.60, 0.62, 0.64], grad_cosine_late=sgd_late),
            _rerun("500", "adam", seeds, grad_cosine_early=[0.78, 0.79, 0.80], grad_cosine_late=[0.71, 0.72, 0.73])]}
        return findings.cosine_trends(by_band).verdict

    assert verdict([0.88, 0.89, 0.90]) == HOLDS
    assert verdict([0.40, 0.41, 0.42]) == DOES_NOT_HOLD  # SGD's consistency falls
    assert verdict([0.55, 0.70, 0.60]) == UNDECIDED


def test_the_section_lists_every_finding() -> None:
    by_band = {"500": [_rerun("500", "adam", _curves([0.6, 0.6, 0.6]))]}
    lines = findings.section(by_band, {"500": 500.0}, {"500": {"adam": ([2, 2, 2], [True] * 3)}})
    assert lines[0] == "## Seed findings"
    assert [line[:7] for line in lines if line.startswith("- **(")] == [f"- **({c})" for c in "abcde"]


def test_the_target_is_absolute_or_a_fraction_of_the_bands_best() -> None:
    histories = [[{"epoch": 1, "val_accuracy": 0.3}, {"epoch": 2, "val_accuracy": 0.6}],
                 [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.4}]]
    assert targets.threshold(Target(fraction_of_best=0.5), histories) == pytest.approx(0.3)
    assert targets.threshold(Target(fraction_of_best=None, accuracy=0.9), histories) == 0.9
    # reached in epoch 2; never reached, censored at the 2 epochs trained
    assert targets.epochs_to(histories, 0.55) == ([2, 2], [True, False])
    assert targets.median_text(([2, 2], [True, False])) == "2"
    assert targets.median_text(([1, 2, 2], [True, False, False])) == "not reached"


def test_never_reaching_the_target_is_not_faster_by_default() -> None:
    # Adam at epochs 3, 3 and never (10 epochs), SGD at 5, 5, 5: the log-rank test does not decide.
    times = {"500": {"adam": ([3, 3, 10], [True, True, False]), "sgd": ([5, 5, 5], [True] * 3)}}
    assert targets.faster_claims(times)[0].startswith("- no difference is significant at 5 %")
    times = {"500": {"adam": ([4] * 5, [True] * 5), "sgd": ([5] * 5, [True] * 5)}}
    assert targets.faster_claims(times) == ["- band 500 Hz: **adam** reaches the target faster than sgd"]
