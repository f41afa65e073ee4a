"""The seed analysis's claims, each judged on a study's re-runs: holds, does not hold, undecided.

A finding is a set of one-sided comparisons that must all come out its way. It holds when every
one does at 95 % (an intersection-union test: the finding as a whole then holds at 95 %); it does
not hold when any one comes out the other way at the Bonferroni level 1 - 0.05 / (number of
comparisons); otherwise it is undecided. Means are compared by the separation of their t
intervals, paired differences by their interval against 0, epochs to the target by the exact
log-rank test. Pure functions over `search.report.Rerun` data: no Ray, no training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search.stats import Censored, earlier, fmt, separated, sign
from search.targets import BandTimes, median_text

if TYPE_CHECKING:
    from search.report import Rerun

HOLDS, DOES_NOT_HOLD, UNDECIDED = "holds", "does not hold", "undecided"
Comparison = Callable[[float], int]  # confidence level -> +1 (the finding's way), -1 (the other way) or 0
ByBand = Mapping[str, Sequence["Rerun"]]


@dataclass(frozen=True)
class Finding:
    claim: str
    verdict: str
    evidence: str  # the numbers behind the verdict, or why it was not tested

    def markdown(self) -> str:
        return f"- **{self.claim}**: {self.verdict}." + (f" {self.evidence}" if self.evidence else "")


def state_bytes(rerun: Rerun) -> list[float]:
    """The optimizer state's memory per seed: the one place naming its metric."""
    return rerun.summary("summary.memory_state_bytes")


def step_ms(rerun: Rerun) -> list[float]:
    """Forward + backward + update time per step, per seed (SVRG's full-gradient passes excluded)."""
    keys = [f"summary.time_{phase}_ms" for phase in ("forward", "backward", "update")]
    return [sum(s[key] for key in keys) for s in rerun.summaries if all(key in s for key in keys)]


def first_epoch_accuracy(rerun: Rerun) -> list[float]:
    return [history[0]["val_accuracy"] for history in rerun.histories]


def final_accuracy(rerun: Rerun) -> list[float]:
    return rerun.final("val_accuracy")


def cosine(rerun: Rerun, third: str) -> list[float]:
    return rerun.summary(f"summary.grad_cosine_{third}")


def cosine_growth(rerun: Rerun) -> list[float]:
    """Late minus early cosine of consecutive gradients, per seed (paired within each run)."""
    return [s["summary.grad_cosine_late"] - s["summary.grad_cosine_early"] for s in rerun.summaries
            if "summary.grad_cosine_late" in s and "summary.grad_cosine_early" in s]


def verdict(comparisons: Sequence[Comparison]) -> str:
    if all(compare(0.95) > 0 for compare in comparisons):
        return HOLDS
    strict = 1 - 0.05 / len(comparisons)
    return DOES_NOT_HOLD if any(compare(strict) < 0 for compare in comparisons) else UNDECIDED


def _above(a: Sequence[float], b: Sequence[float]) -> Comparison:
    return lambda level: separated(a, b, level)


def _earlier(a: Censored, b: Censored) -> Comparison:
    return lambda level: earlier(a, b, alpha=1 - level)


def _present(by_band: ByBand, *names: str) -> str | None:
    """Why a finding cannot be tested: the first optimizer it needs that no band re-ran."""
    tried = {rerun.optimizer for reruns in by_band.values() for rerun in reruns}
    missing = [name for name in names if name not in tried]
    return f"not tested (no {missing[0]} trials)" if missing else None


def _judged(claim: str, comparisons: Sequence[Comparison], evidence: Sequence[str], why_not: str) -> Finding:
    if not comparisons:
        return Finding(claim, why_not, "")
    return Finding(claim, verdict(comparisons), "; ".join(evidence) + ".")


def leads_every_band(by_band: ByBand, leader: str, values: Callable[[Rerun], list[float]], claim: str,
                     what: str, higher: bool = True) -> Finding:
    """`leader`'s values lie above (or below) every other optimizer's, in every band it ran in."""
    if why_not := _present(by_band, leader):
        return Finding(claim, why_not, "")
    comparisons, evidence = [], []
    for band, reruns in by_band.items():
        lead = next((r for r in reruns if r.optimizer == leader), None)
        if lead is None or len(reruns) < 2:
            continue
        for other in (r for r in reruns if r is not lead):
            a, b = (values(lead), values(other)) if higher else (values(other), values(lead))
            comparisons.append(_above(a, b))
        evidence.append(f"band {band} Hz {what}: " + ", ".join(f"{r.optimizer} {fmt(values(r))}" for r in reruns))
    return _judged(claim, comparisons, evidence, f"not tested (no other optimizer in {leader}'s bands)")


def adam_fastest_early(by_band: ByBand) -> Finding:
    return leads_every_band(by_band, "adam", first_epoch_accuracy, "(a) Adam converges fastest early",
                            "validation accuracy after epoch 1")


def sgd_most_accurate(by_band: ByBand) -> Finding:
    return leads_every_band(by_band, "sgd", final_accuracy, "(b) SGD with momentum ends most accurate",
                            "final validation accuracy")


def higher_bands_easier(by_band: ByBand, centres: Mapping[str, float],
                        to_target: BandTimes) -> Finding:
    """The highest band against the lowest, per optimizer run in both: a higher final accuracy and
    an earlier target (each band's own target)."""
    claim = "(c) Higher bands are easier and converge sooner"
    if len(by_band) < 2:
        return Finding(claim, "not tested (one band)", "")
    low, high = min(by_band, key=centres.__getitem__), max(by_band, key=centres.__getitem__)
    lows = {r.optimizer: r for r in by_band[low]}
    comparisons, evidence = [], []
    for rerun in by_band[high]:
        if rerun.optimizer not in lows:
            continue
        name, lowest = rerun.optimizer, lows[rerun.optimizer]
        comparisons += [_above(final_accuracy(rerun), final_accuracy(lowest)),
                        _earlier(to_target[high][name], to_target[low][name])]
        evidence.append(f"{name}: final accuracy {fmt(final_accuracy(lowest))} at {low} Hz, "
                        f"{fmt(final_accuracy(rerun))} at {high} Hz; median epochs to target "
                        f"{median_text(to_target[low][name])} and {median_text(to_target[high][name])}")
    return _judged(claim, comparisons, evidence, f"not tested (no optimizer ran in both {low} and {high} Hz)")


def svrg_slowest_and_largest(by_band: ByBand) -> Finding:
    """SVRG's time per step and optimizer state both above every other optimizer's, in every band."""
    claim = "(d) SVRG is slowest per step and costs the most memory"
    if why_not := _present(by_band, "svrg"):
        return Finding(claim, why_not, "")
    comparisons, evidence = [], []
    for band, reruns in by_band.items():
        svrg = next((r for r in reruns if r.optimizer == "svrg"), None)
        if svrg is None or len(reruns) < 2:
            continue
        for other in (r for r in reruns if r is not svrg):
            comparisons += [_above(step_ms(svrg), step_ms(other)), _above(state_bytes(svrg), state_bytes(other))]
        evidence.append(f"band {band} Hz ms per step, state bytes: "
                        + ", ".join(f"{r.optimizer} {fmt(step_ms(r), 3)}, {fmt(state_bytes(r), 0)}" for r in reruns))
    return _judged(claim, comparisons, evidence, "not tested (no other optimizer in svrg's bands)")


def cosine_trends(by_band: ByBand) -> Finding:
    """SGD's consecutive-gradient cosine rises from the early to the late third (paired per seed);
    Adam's lies above SGD's early one in both its early and its late third."""
    claim = "(e) Gradient-direction consistency grows for SGD and stays high for Adam"
    if why_not := _present(by_band, "sgd", "adam"):
        return Finding(claim, why_not, "")
    comparisons, evidence = [], []
    for band, reruns in by_band.items():
        named = {r.optimizer: r for r in reruns}
        if "sgd" not in named or "adam" not in named:
            continue
        sgd, adam = named["sgd"], named["adam"]
        growth = cosine_growth(sgd)
        comparisons += [lambda level, growth=growth: sign(growth, level),
                        _above(cosine(adam, "early"), cosine(sgd, "early")),
                        _above(cosine(adam, "late"), cosine(sgd, "early"))]
        evidence.append(f"band {band} Hz early, late: sgd {fmt(cosine(sgd, 'early'))}, {fmt(cosine(sgd, 'late'))} "
                        f"(late - early {fmt(growth)}), adam {fmt(cosine(adam, 'early'))}, {fmt(cosine(adam, 'late'))}")
    return _judged(claim, comparisons, evidence, "not tested (sgd and adam never ran in the same band)")


def section(by_band: ByBand, centres: Mapping[str, float], to_target: BandTimes) -> list[str]:
    """The report's "Seed findings" section: each claim with its verdict and numbers."""
    found = [adam_fastest_early(by_band), sgd_most_accurate(by_band), higher_bands_easier(by_band, centres, to_target),
             svrg_slowest_and_largest(by_band), cosine_trends(by_band)]
    return ["## Seed findings", "",
            "The claims of the analysis this product was conceived from, judged on this study. A claim "
            "**holds** when every comparison it needs comes out its way at 95 % (every band; mean ± 95 % "
            "intervals separated, a paired interval above 0, or the log-rank test at 5 % for epochs to the "
            "target), **does not hold** when any comes out the other way at 95 % after a Bonferroni correction "
            "over its comparisons, else it is **undecided**. (a) compares the validation accuracy after the "
            "first epoch; (c) the lowest band with the highest, each against its own target; (d) the time "
            "per step (forward, backward, update; SVRG's full-gradient passes are in the memory and time "
            "table) and the optimizer state bytes; (e) \"stays high\" means Adam's cosine in both the early "
            "and the late third lies above SGD's early one.", "",
            *(finding.markdown() for finding in found), ""]
