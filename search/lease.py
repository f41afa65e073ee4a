"""One driver per study: a launch holds the study's lease in the Optuna storage while it runs.

Leases live in a study of their own (`LEASE_STUDY`). A launch asks for one by adding a
trial, a ticket, that says who it is (owner token, host, pid, since) and which holder it
succeeds (`after`: that holder's ticket number, -1 for none). Every storage writes a study's
trials one at a time, numbered in order, each with its attributes (a row lock on an RDB, the
file lock of a journal), so the holder is the end of a chain any reader computes alike: in
ticket order, a ticket that names the holder so far becomes the holder. Of two launches
asking at once, the ticket written first wins; the other reads the chain back and stops.

The holder renews a heartbeat on its ticket every RENEW_SECONDS from a daemon thread and
releases the lease by finishing its ticket (COMPLETE; the value is the seconds it held it).
A heartbeat older than TTL_SECONDS means its driver is gone: `--take-over` then takes the
lease. A holder that finds its lease taken over stops its launch as Ctrl-C would. Heartbeats
are Unix times of the holder's clock: machines sharing a storage keep their clocks in step.
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from search.errors import BandsearchError
from search.storage import open_storage
from search.studies import (
    LEASE_AFTER,
    LEASE_FOR,
    LEASE_HEARTBEAT,
    LEASE_HOST,
    LEASE_OWNER,
    LEASE_PID,
    LEASE_SINCE,
    LEASE_STUDY,
    trial_id,
)

log = logging.getLogger(__name__)

RENEW_SECONDS = 10.0  # how often the holder renews its heartbeat
TTL_SECONDS = 3 * RENEW_SECONDS  # a heartbeat older than this: the holder is gone, its lease expired


@dataclass(frozen=True)
class Holder:
    """A launch holding (or having held) a study's lease, as its ticket says."""

    number: int  # the ticket's trial number
    trial_id: int
    owner: str
    host: str
    pid: int
    since: float
    heartbeat: float
    released: bool

    def age(self, now: float) -> float:
        return now - self.heartbeat

    def expired(self, now: float) -> bool:
        return self.age(now) > TTL_SECONDS

    def describe(self, now: float) -> str:
        since = datetime.fromtimestamp(self.since, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"host {self.host} pid {self.pid} since {since}, last heartbeat {self.age(now):.0f} s ago"


def _chain(tickets: list[FrozenTrial], study: str) -> Holder | None:
    """The end of `study`'s chain of tickets: in order, a ticket naming the holder so far takes over."""
    holder: Holder | None = None
    for ticket in sorted(tickets, key=lambda t: t.number):
        attrs = ticket.user_attrs
        if attrs.get(LEASE_FOR) == study and attrs.get(LEASE_AFTER) == (holder.number if holder else -1):
            holder = Holder(ticket.number, trial_id(ticket), attrs[LEASE_OWNER], attrs[LEASE_HOST],
                            attrs[LEASE_PID], attrs[LEASE_SINCE], attrs[LEASE_HEARTBEAT],
                            ticket.state == TrialState.COMPLETE)
    return holder


def current_holder(storage_url: str, study: str) -> Holder | None:
    """The last launch to take `study`'s lease (None if none ever did); reads only."""
    storage = open_storage(storage_url)
    try:
        lease_study = storage.get_study_id_from_name(LEASE_STUDY)
    except KeyError:
        return None
    return _chain(storage.get_all_trials(lease_study, deepcopy=False), study)


def holder_line(storage_url: str, study: str) -> str | None:
    """Who runs `study` now, for `bandsearch status` (None if no launch holds its lease)."""
    holder, now = current_holder(storage_url, study), time.time()
    if holder is None or holder.released:
        return None
    expired = " (expired: that driver is gone; `launch --take-over` takes the study)" if holder.expired(now) else ""
    return f"launch running: {holder.describe(now)}{expired}"


class Lease:
    """This launch's lease on `study` in the storage at `storage_url`."""

    def __init__(self, storage_url: str, study: str, clock: Callable[[], float] = time.time):
        self.storage_url, self.study, self.clock = storage_url, study, clock
        self.owner = uuid.uuid4().hex
        self.ticket: Holder | None = None  # ours, while we hold the lease
        self.taken_by: Holder | None = None  # who took it over from us

    def take(self, take_over: bool = False) -> None:
        """Take the lease, or raise the error naming its holder: a live one always, an expired
        one unless `take_over`."""
        storage = open_storage(self.storage_url)
        optuna.create_study(study_name=LEASE_STUDY, storage=storage, load_if_exists=True)
        lease_study = storage.get_study_id_from_name(LEASE_STUDY)
        holder, now = current_holder(self.storage_url, self.study), self.clock()
        held = holder is not None and not holder.released
        if held and (not holder.expired(now) or not take_over):
            raise BandsearchError(self._refusal(holder, now, take_over))
        ticket = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={
            LEASE_FOR: self.study, LEASE_OWNER: self.owner, LEASE_HOST: socket.gethostname(), LEASE_PID: os.getpid(),
            LEASE_SINCE: now, LEASE_HEARTBEAT: now, LEASE_AFTER: holder.number if holder else -1})
        ours = storage.create_new_trial(lease_study, template_trial=ticket)
        winner = current_holder(self.storage_url, self.study)  # never None: our ticket is in the chain's storage
        if winner.owner != self.owner:  # another launch asked at the same moment, and was written first
            storage.set_trial_state_values(ours, TrialState.FAIL)
            raise BandsearchError(self._refusal(winner, self.clock(), take_over))
        self.ticket = winner
        if held:
            log.warning("took over study %r from the expired lease of %s", self.study, holder.describe(now))
            with contextlib.suppress(UpdateFinishedTrialError):  # it woke up and released it meanwhile
                storage.set_trial_state_values(holder.trial_id, TrialState.FAIL)

    def _refusal(self, holder: Holder, now: float, take_over: bool) -> str:
        """The one-line error for a launch that may not take the lease held by `holder`."""
        who = f"study {self.study!r} is being run by another launch ({holder.describe(now)})"
        if holder.expired(now):
            return (f"{who}, whose lease has expired (no heartbeat for {TTL_SECONDS:.0f} s: its driver is likely "
                    "dead); run again with --take-over to take the study over (its running trials are retried)")
        if take_over:
            return (f"--take-over: {who}, and its lease is live; stop that launch, or if its driver is dead, retry "
                    f"once its lease expires ({TTL_SECONDS:.0f} s after its last heartbeat)")
        return (f"{who}; wait for it to end, or if its driver is dead, run again with --take-over once its lease "
                f"expires ({TTL_SECONDS:.0f} s after its last heartbeat)")

    def renew(self) -> bool:
        """Renew our heartbeat; False if another launch has taken the lease over (`taken_by`)."""
        with contextlib.suppress(UpdateFinishedTrialError):  # finished by the launch that took it over
            open_storage(self.storage_url).set_trial_user_attr(self.ticket.trial_id, LEASE_HEARTBEAT, self.clock())
        holder = current_holder(self.storage_url, self.study)
        if holder is not None and holder.owner == self.owner:
            return True
        self.taken_by = holder
        return False

    def release(self) -> None:
        """Finish our ticket, so that the next launch takes the lease at once."""
        if self.ticket is None or self.taken_by is not None:
            return
        try:
            open_storage(self.storage_url).set_trial_state_values(
                self.ticket.trial_id, TrialState.COMPLETE, [self.clock() - self.ticket.since])
        except Exception as err:  # storage gone: the lease expires on its own
            log.warning("could not release the lease of study %r (%s); it expires %.0f s after its last heartbeat",
                        self.study, err, TTL_SECONDS)
        self.ticket = None

    @contextlib.contextmanager
    def hold(self, take_over: bool = False) -> Iterator[Lease]:
        """Take the lease, renew it while the block runs and release it after, also on Ctrl-C or
        an error. Taken over meanwhile, the block is interrupted and ends with the error saying so."""
        self.take(take_over)
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(stop,), name=f"lease {self.study}", daemon=True)
        renewer.start()
        try:
            yield self
        except BaseException:
            if self.taken_by is None:
                raise
            raise BandsearchError(f"study {self.study!r} was taken over by another launch "
                                  f"({self.taken_by.describe(self.clock())}); this launch stopped") from None
        finally:
            stop.set()
            renewer.join()
            self.release()

    def _renew_until(self, stop: threading.Event) -> None:
        while not stop.wait(RENEW_SECONDS):
            try:
                if self.renew():
                    continue
            except Exception as err:  # the storage unreachable for a while: the lease holds until it expires
                log.warning("could not renew the lease of study %r: %s", self.study, err)
                continue
            log.error("study %r was taken over by another launch; stopping this one", self.study)
            _thread.interrupt_main()
            return
