"""From published and rejected revisions to rows in the outbox.

The outbox keeps a cursor: the revision whose change set it holds. A change set that could
not be written (a locked or full database) is written by a later publish or by the worker's
safety-net tick, against the right base, so no change is lost to a store outage; the
revision itself is published regardless.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from gitconf.brokers import spring_bus
from gitconf.clock import iso, utcnow
from gitconf.errors import Problem
from gitconf.metrics import Metrics
from gitconf.notify.brokers import Brokers
from gitconf.notify.events import (
    CHANGED,
    REJECTED,
    Change,
    change_set,
    changed_event,
    encode,
    matches,
    rejected_event,
)
from gitconf.notify.policy import DeliveryPolicy
from gitconf.notify.targets import TargetPolicy
from gitconf.notify.worker import Worker
from gitconf.publisher import Publisher
from gitconf.served import ServedRevision
from gitconf.store.deliveries import Move, NewMove, Outbox
from gitconf.store.subscriptions import Subscription, SubscriptionStore

__all__ = ["Notifier"]

log = logging.getLogger(__name__)

KNOWN_REVISIONS = 4  # recent revisions kept to diff against after a missed change set
RETENTION = dt.timedelta(days=7)  # finished deliveries are kept this long, for the API
PRUNE_EVERY = 3600.0  # seconds


ConfigKey = tuple[str, str]
# An older revision's ETags and identities, and the changed keys of each config from it to a
# newer one.
ChangesFrom = tuple[dict[ConfigKey, str], dict[ConfigKey, str], dict[ConfigKey, tuple[str, ...]]]


class Base(NamedTuple):
    """The served state a change set is measured from: its head, its pins, its configs' ETags
    and identities (which tell a change to a secret alone)."""

    revision: str
    etags: dict[ConfigKey, str]
    ids: dict[ConfigKey, str]
    pins: Mapping[str, str] = MappingProxyType({})

    @staticmethod
    def of(served: ServedRevision) -> Base:
        """The base of a served revision this process holds."""
        return Base(served.revision, served.etags(), served.identities(), dict(served.pinned))

    def revision_of(self, env: str) -> str:
        """The revision env was served from."""
        return self.pins.get(env, self.revision)

    @property
    def state(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """The head and the pins, as ServedRevision.state."""
        return self.revision, tuple(sorted(self.pins.items()))


def new_event_id() -> str:
    """A fresh event id (also the webhook-id of every attempt)."""
    return "evt_" + uuid.uuid4().hex


class Notifier:
    """Turns publishes into deliveries and owns the worker that sends them."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        subscriptions: SubscriptionStore,
        publisher: Publisher,
        policy: DeliveryPolicy,
        targets: TargetPolicy,
        metrics: Metrics,
        environ: Mapping[str, str],
        base_url: str,
        cursor_key: str,
        changes_between: Callable[[str, str], ChangesFrom | None] | None = None,
        exclusive_store: bool = False,
        migrate: Callable[[], object] | None = None,
        descends: Callable[[str, str], bool] | None = None,
        brokers: Brokers | None = None,
    ) -> None:
        self.outbox = outbox
        self.subscriptions = subscriptions
        self.publisher = publisher
        self.policy = policy
        self.targets = targets
        self.metrics = metrics
        self.environ = environ
        self.base_url = base_url
        self.cursor_key = cursor_key
        # The ETags of an older revision and the changed keys from it to a newer one (from the
        # compile worker), for a change set whose base is not a revision this process served.
        self.changes_between = changes_between
        self.exclusive_store = exclusive_store
        # Whether a commit descends from another, as far as this server's clone knows.
        self.descends = descends or (lambda _commit, _ancestor: False)
        self.store_error: str | None = None
        self._migrate = migrate
        self._schema_ready = migrate is None
        # The brokers of server.yaml: subscriptions of origin broker, synced once per run.
        self.brokers = brokers
        self._brokers_synced = False
        self.worker = Worker(
            outbox,
            subscriptions,
            policy,
            targets,
            metrics,
            environ,
            on_tick=self.tick,
            brokers=brokers,
        )
        self._pruned_at = 0.0
        self._lock = threading.RLock()
        # The ETags of recent revisions (not their bodies: a base/_all.yaml commit changes
        # every body, and four whole revisions would be four times the served bytes).
        self._known: OrderedDict[
            tuple[str, tuple[tuple[str, str], ...]],
            tuple[dict[tuple[str, str], str], dict[tuple[str, str], str]],
        ] = OrderedDict()
        # The previous revision of a change set that could not be written to a store without
        # a cursor yet: the next write diffs against it rather than taking a new baseline.
        self._missed_base: ServedRevision | None = None
        # The compile worker's last comparisons (a change set may need one twice).
        self._between_memo: OrderedDict[tuple[str, str], ChangesFrom] = OrderedDict()

    # -- lifecycle -----------------------------------------------------------------------

    def ensure_schema(self) -> bool:
        """Create or migrate the tables; a store that is down is reported and tried again."""
        if self._schema_ready or self._migrate is None:
            return True
        try:
            self._migrate()
        except Exception as exc:
            self._failed("creating the notification tables", exc)
            return False
        self._schema_ready = True
        self.store_error = None
        return True

    def start(self) -> None:
        """Resume: give back a crashed run's leases, write any missed change set, deliver."""
        if self.ensure_schema():
            try:
                self._sync_brokers()
            except Exception as exc:
                self._failed("syncing the brokers' subscriptions", exc)
        if self.exclusive_store:
            try:
                released = self.outbox.release_all()
                if released:
                    log.info("resuming %d delivery(ies) claimed before a restart", released)
            except Exception as exc:
                self._failed("releasing leases", exc)
        self.catch_up()
        self.worker.start()

    def stop(self) -> None:
        """Stop the worker, then close the brokers' connections."""
        self.worker.stop()
        if self.brokers is not None:
            self.brokers.close()

    # -- publish listeners ---------------------------------------------------------------

    def published(
        self,
        previous: ServedRevision | None,
        new: ServedRevision,
        *,
        kind: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Queue one delivery per changed config and matching subscription.

        kind says what moved the served state (publish, rollback, pin, unpin; by default a
        publish, or a rollback when new is an ancestor of previous) and is in the events with
        reason."""
        with self._lock:
            self._remember(previous)
            self._remember(new)
            try:
                if not self._schema_ready:
                    assert self._migrate is not None
                    self._migrate()
                    self._schema_ready = True
                self._sync_brokers()
                self.subscriptions.sync_manifest(new.subscriptions)
                if kind is None and new.move is not None:
                    kind, reason = new.move  # a pin or unpin (gitconf.release)
                if kind is None:
                    kind = "publish"
                    if (
                        previous is not None
                        and previous.revision != new.revision
                        and self.descends(previous.revision, new.revision)
                    ):
                        kind = "rollback"
                self._write(previous, new, adopt_unknown=False, kind=kind, reason=reason)
            except Exception as exc:
                self._failed(f"queueing the changes of {new.revision[:12]}", exc)
                self._missed_base = self._missed_base or previous
                return
        self.worker.wake()

    def announce(
        self,
        old: ServedRevision,
        new: ServedRevision,
        environments: Sequence[str],
        kind: str,
        reason: str | None,
    ) -> None:
        """Announce the configs of environments that differ from old to new as a served move
        of its own, though the served state stays (a rollout aborted: the instances that were
        served its candidate, old, are served the stable revision, new, again). Called by
        the replica that made the move only."""
        chosen = set(environments)
        with self._lock:
            try:
                with self.outbox.exclusive(self.cursor_key):
                    last = self.outbox.last_move(self.cursor_key)
                    rows = [
                        r
                        for r in self._rows(Base.of(old), new, kind, reason)
                        if r["environment"] in chosen
                    ]
                    move = NewMove(
                        self.cursor_key, new.revision, dict(new.pinned), last, kind, reason
                    )
                    self.outbox.enqueue(rows, new.revision, move=move)
            except Exception as exc:
                self._failed(f"queueing the {kind} of {', '.join(sorted(chosen))}", exc)
                return
        self.worker.wake()

    def rejected(self, sha: str, problems: Sequence[Problem]) -> None:
        """Queue the rejection for the subscriptions that asked for it."""
        served = self.publisher.served
        stamp = iso(utcnow()) or ""
        try:
            rows = []
            for sub in self.subscriptions.all(active_only=True):
                if REJECTED not in sub.events:
                    continue
                event_id = new_event_id()
                body = rejected_event(
                    event_id=event_id,
                    source=self.base_url,
                    time=stamp,
                    revision=sha,
                    served_revision=served.revision if served else None,
                    problems=[p.render() for p in problems],
                )
                rows.append(self._row(event_id, sub.id, REJECTED, "", "", sha, None, body))
            if rows:
                self.outbox.enqueue(rows, sha)
        except Exception as exc:
            self._failed(f"queueing the rejection of {sha[:12]}", exc)
            return
        self.worker.wake()

    def tick(self) -> None:
        """The worker's safety-net tick: catch up, and now and then drop old deliveries."""
        if not self.ensure_schema():
            return
        self.catch_up()
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            try:
                removed = self.outbox.prune(utcnow() - RETENTION)
            except Exception as exc:
                self._failed("pruning old deliveries", exc)
            else:
                if removed:
                    log.info("pruned %d finished delivery(ies) older than 7 days", removed)

    def catch_up(self) -> None:
        """Write the change set of the served revision if the outbox does not hold it yet."""
        served = self.publisher.served
        if served is None:
            return
        with self._lock:
            self._remember(served)
            try:
                last = self.outbox.last_move(self.cursor_key)
                if last is not None and last.state == served.state:
                    self.store_error = None  # the store answers, and holds what is served
                    return
                self._sync_brokers()
                self.subscriptions.sync_manifest(served.subscriptions)
                self._write(None, served, adopt_unknown=True, kind="publish", reason=None)
            except Exception as exc:
                self._failed("catching up on the outbox", exc)
                return
        self.worker.wake()

    def _sync_brokers(self) -> None:
        """Make the broker subscriptions those of the settings, once per run (also when there
        are none, so that brokers removed from server.yaml are retired)."""
        if self._brokers_synced:
            return
        self.subscriptions.sync_brokers(self.brokers.declared() if self.brokers else [])
        self._brokers_synced = True

    # -- writing -------------------------------------------------------------------------

    def _write(
        self,
        previous: ServedRevision | None,
        new: ServedRevision,
        *,
        adopt_unknown: bool,
        kind: str,
        reason: str | None,
    ) -> None:
        """Write the change set from the last served move to new, as a new served move.

        The last move is the truth: the outbox holds every change set up to it. A store
        without one takes the served state as its baseline, without events: nothing changed
        for a subscriber (which fetches its config when it starts).
        """
        with self.outbox.exclusive(self.cursor_key):
            self._write_change_set(
                previous, new, adopt_unknown=adopt_unknown, kind=kind, reason=reason
            )

    def _write_change_set(
        self,
        previous: ServedRevision | None,
        new: ServedRevision,
        *,
        adopt_unknown: bool,
        kind: str,
        reason: str | None,
    ) -> None:
        last = self.outbox.last_move(self.cursor_key)
        if last is not None and last.state == new.state:
            return  # written already (by this replica or another): publishing again adds nothing
        # What this process served before new, as far as the outbox was told (a change set it
        # could not write keeps the older start).
        start = self._missed_base or previous
        base: Base | None = None
        if last is None:
            if start is not None:
                base = Base.of(start)
        elif start is not None and start.state == last.state:
            # This process moved from what the outbox announced last: a move, whichever way
            # it goes (forward, back to an earlier commit, a pin), is announced.
            base = Base.of(start)
        elif dict(last.pins) == new.pinned and self.descends(new.revision, last.revision):
            # A later commit than the outbox's, by a process that missed the moves between:
            # measured from what subscribers last heard.
            base = self._revision(last, new)
            if base is None and not adopt_unknown and start is not None:
                base = Base.of(start)
            if base is None:
                log.warning(
                    "cannot read revision %s to diff against; notifications resume from %s",
                    last.revision[:12],
                    new.revision[:12],
                )
        else:
            # The outbox announced a state this process has not served (another replica is
            # ahead, or this one has not fetched the newer commit): writing from here would
            # move the announced state back. The replica that made the move announced it.
            log.debug(
                "not writing %s: the outbox's last move is %s",
                new.revision[:12],
                last.revision[:12],
            )
            return
        move = NewMove(
            self.cursor_key,
            new.revision,
            dict(new.pinned),
            last,
            kind if base is not None else "baseline",
            reason,
        )
        rows = self._rows(base, new, kind, reason) if base is not None else []
        added, superseded = self.outbox.enqueue(rows, new.revision, move=move)
        self._missed_base = None
        self.store_error = None
        if superseded:
            self.metrics.webhook_deliveries.labels("superseded").inc(superseded)
        if rows:
            log.info(
                "queued %d delivery(ies) for %s (%s; %d superseded)",
                added,
                new.revision[:12],
                kind,
                superseded,
            )

    def _rows(
        self, base: Base, new: ServedRevision, kind: str, reason: str | None
    ) -> list[dict[str, Any]]:
        subs = [s for s in self.subscriptions.all(active_only=True) if CHANGED in s.events]
        if not subs:
            return []
        keys = self._keys(base, new)
        with_config = any(s.include_config for s in subs)
        changes = change_set(
            base.etags,
            new.etags(),
            keys,
            (lambda key: new.value(*key)) if with_config else (lambda _key: None),
            old_ids=base.ids,
            new_ids=new.identities(),
        )
        now = utcnow()
        stamp = iso(now) or ""
        rows = []
        buses = [s for s in subs if self._format(s) == "spring-bus"]
        events = [s for s in subs if s not in buses and self._format(s) is not None]
        for change in changes:
            for sub in events:
                if not matches(sub.environments, sub.services, change.environment, change.service):
                    continue
                event_id = new_event_id()
                revision = new.revision_of(change.environment)
                previous = base.revision_of(change.environment)
                # Several environments moved at once: each event names its own move.
                action, why = new.moves.get(change.environment, (kind, reason))
                event = changed_event(
                    change,
                    event_id=event_id,
                    source=self.base_url,
                    time=stamp,
                    revision=revision,
                    previous_revision=previous,
                    base_url=self.base_url,
                    include_config=sub.include_config,
                    action=action if action != "publish" else None,
                    reason=why,
                )
                rows.append(
                    self._row(
                        event_id,
                        sub.id,
                        CHANGED,
                        change.environment,
                        change.service,
                        revision,
                        previous,
                        event,
                    )
                )
        for sub in buses:
            rows += self._refresh_rows(sub, changes, new.revision, base.revision, now)
        return rows

    def _format(self, sub: Subscription) -> str | None:
        """A subscriber's format: a webhook's CloudEvents, or its broker's (None: a broker
        this server does not have, whose format it cannot know)."""
        if sub.origin != "broker":
            return "cloudevents"
        outlet = self.brokers.get(sub.id) if self.brokers is not None else None
        return outlet.spec.format if outlet is not None else None

    def _refresh_rows(
        self,
        sub: Subscription,
        changes: Sequence[Change],
        revision: str,
        previous: str,
        now: dt.datetime,
    ) -> list[dict[str, Any]]:
        """One Spring Cloud Bus refresh per changed service (in any environment it matches):
        the destination `<service>:**` is every instance of it, whatever its profile."""
        assert self.brokers is not None
        services = sorted(
            {c.service for c in changes if matches(sub.environments, sub.services, *c[:2])}
        )
        rows = []
        for service in services:
            event_id = new_event_id()
            event = spring_bus.refresh_event(
                event_id=event_id,
                service=service,
                origin=self.brokers.origin,
                timestamp_ms=int(now.timestamp() * 1000),
            )
            rows.append(
                self._row(event_id, sub.id, CHANGED, "", service, revision, previous, event)
            )
        return rows

    @staticmethod
    def _row(
        event_id: str,
        sub_id: str,
        kind: str,
        env: str,
        service: str,
        revision: str,
        previous: str | None,
        event: dict[str, Any],
    ) -> dict[str, Any]:
        now = utcnow()
        return {
            "event_id": event_id,
            "subscription_id": sub_id,
            "type": kind,
            "environment": env,
            "service": service,
            "revision": revision,
            "previous_revision": previous,
            "body": encode(event).decode(),
            "state": "pending",
            "created_at": now,
            "next_attempt_at": now,
            "attempts": 0,
        }

    def _remember(self, served: ServedRevision | None) -> None:
        if served is None:
            return
        self._known[served.state] = (served.etags(), served.identities())
        self._known.move_to_end(served.state)
        while len(self._known) > KNOWN_REVISIONS:
            self._known.popitem(last=False)

    def _revision(self, move: Move, new: ServedRevision) -> Base | None:
        """The ETags and identities of the state move served (from the compile worker if
        this process did not serve it lately)."""
        known = self._known.get(move.state)
        if known is not None:
            return Base(move.revision, *known, pins=dict(move.pins))
        found = self._between(move.revision, new.revision)
        if found is None:
            return None
        etags, ids = dict(found[0]), dict(found[1])
        for env, sha in move.pins.items():
            pinned = self._between(sha, new.revision)
            if pinned is None:
                return None
            etags = {k: v for k, v in etags.items() if k[0] != env}
            ids = {k: v for k, v in ids.items() if k[0] != env}
            etags.update((k, v) for k, v in pinned[0].items() if k[0] == env)
            ids.update((k, v) for k, v in pinned[1].items() if k[0] == env)
        return Base(move.revision, etags, ids, dict(move.pins))

    def _keys(self, base: Base, new: ServedRevision) -> dict[ConfigKey, tuple[str, ...]]:
        """The changed key paths of each config from base to new: each environment from the
        revision it was served from to the one it is served from now."""
        pairs: dict[tuple[str, str], list[str]] = {}
        for env in set(new.environments) | {k[0] for k in base.etags}:
            pairs.setdefault((base.revision_of(env), new.revision_of(env)), []).append(env)
        keys: dict[ConfigKey, tuple[str, ...]] = {}
        for (old, now), envs in pairs.items():
            if old == now:
                continue
            if now == new.revision and new.base == old:
                found = new.changed
            else:
                changes = self._between(old, now)
                found = changes[2] if changes is not None else {}
            chosen = set(envs)
            keys.update((k, v) for k, v in found.items() if k[0] in chosen)
        return keys

    def _between(self, old: str, new: str) -> ChangesFrom | None:
        """old's ETags and identities and the keys changed from it to new (compile worker)."""
        if self.changes_between is None:
            return None
        memo = self._between_memo.get((old, new))
        if memo is not None:
            return memo
        try:
            found = self.changes_between(old, new)
        except Exception as exc:
            log.warning("cannot compare revision %s with %s: %s", old[:12], new[:12], exc)
            return None
        if found is not None:
            self._between_memo[(old, new)] = found
            while len(self._between_memo) > KNOWN_REVISIONS:
                self._between_memo.popitem(last=False)
        return found

    def _failed(self, what: str, exc: Exception) -> None:
        log.error("notifications: %s failed: %s", what, exc)
        self.store_error = f"{what}: {exc}"
        self.metrics.outbox_errors.labels("enqueue").inc()
