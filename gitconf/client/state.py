"""The copy of a config a client holds, and the watch's decisions; no network I/O here.

Both clients (sync and asyncio) move bytes and call these: `Holder` keeps the copy in memory
and on disk and says what a read returns (fresh, revalidated, or the cached copy when the
server cannot answer); `WatchState` says what the next long poll asks, which answers are
changes to report, and how long to back off after a failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable
from typing import Any

from gitconf.client.backoff import Backoff
from gitconf.client.cache import DiskCache
from gitconf.client.changes import Change, change_between
from gitconf.client.protocol import (
    ClientError,
    Endpoint,
    Fetched,
    ProtocolError,
    Response,
    ServerError,
    interpret,
    request_headers,
)
from gitconf.errors import GitconfError
from gitconf.notify.policy import retry_after

__all__ = ["ConfigUnavailable", "Holder", "WatchState"]

log = logging.getLogger("gitconf.client")


class ConfigUnavailable(GitconfError):
    """Neither the server nor the cache can give the config; the message says why and what to do."""

    def __init__(self, url: str, cause: str, hint: str) -> None:
        super().__init__(f"{url}: the config cannot be read: {cause}; {hint}")
        self.url = url
        self.cause = cause


class Holder:
    """The copy a client holds (memory, then cache_dir), its ETag and whether it is stale."""

    def __init__(
        self,
        endpoint: Endpoint,
        environment: str,
        service: str,
        cache: DiskCache | None,
        cache_secrets: bool,
    ) -> None:
        self.endpoint = endpoint
        self.environment = environment
        self.service = service
        self.cache = cache
        self.cache_secrets = cache_secrets
        self.lock = threading.Lock()
        self.config: Any = None
        self.etag: str | None = None
        self.revision: str | None = None
        self.stale = False
        self._loaded = False  # whether the disk copy was looked at

    @property
    def url(self) -> str:
        """The config's URL."""
        return self.endpoint.url

    def _load_disk(self) -> None:
        # Under self.lock. A client starts from its disk copy: its ETag revalidates it cheaply.
        if self._loaded or self.config is not None or self.cache is None:
            return
        self._loaded = True
        cached = self.cache.load(self.url, self.environment, self.service)
        if cached is not None:
            self.config, self.etag, self.revision = cached.config, cached.etag, cached.revision

    def validator(self) -> str | None:
        """The ETag to revalidate with, if any copy is held."""
        with self.lock:
            self._load_disk()
            return self.etag

    def current(self) -> tuple[Any, str | None]:
        """The copy held (None if none) and its ETag."""
        with self.lock:
            self._load_disk()
            return self.config, self.etag

    def answered(self, response: Response) -> Fetched | None:
        """Take a 200 or 304; ServerError, ClientError or ProtocolError for anything else."""
        fetched = interpret(response.status, response.headers, response.body)
        with self.lock:
            self.stale = False
            if fetched is None:  # 304: the copy held is current
                self.revision = response.headers.get("x-gitconf-revision", self.revision)
                return None
            self.config, self.etag, self.revision = fetched.config, fetched.etag, fetched.revision
            self._store(fetched)
            return fetched

    def _store(self, fetched: Fetched) -> None:
        if self.cache is None:
            return
        try:
            if fetched.secrets and not self.cache_secrets:
                # Plaintext secrets stay off the disk. The older copy goes too: serving it on
                # an outage would be serving a config already known to be outdated.
                self.cache.remove(self.environment, self.service)
            else:
                self.cache.store(self.url, self.environment, self.service, fetched)
        except OSError as exc:
            log.warning(
                "%s: cannot write the cached copy of %s: %s (check cache_dir's permissions)",
                self.cache.path(self.environment, self.service),
                self.url,
                exc,
            )

    def held(self) -> Any:
        """The config held."""
        with self.lock:
            return self.config

    def fallback(self, cause: str) -> Any:
        """The copy held, marked stale; ConfigUnavailable if there is none."""
        with self.lock:
            self._load_disk()
            if self.config is None:
                where = (
                    f"no cached copy in {str(self.cache.directory)!r}"
                    if self.cache is not None
                    else "no cached copy (the client has no cache_dir)"
                )
                raise ConfigUnavailable(
                    self.url,
                    cause,
                    f"{where}: check that the server runs and the URL is right; "
                    "a copy is kept once one read succeeds",
                )
            self.stale = True
            return self.config

    def mark_stale(self) -> None:
        """A watch could not reach the server: the copy held may be outdated."""
        with self.lock:
            self.stale = True

    def refused(self, exc: ClientError) -> ConfigUnavailable:
        """The error of a 4xx: a wrong token, scope, environment or service to fix."""
        return ConfigUnavailable(
            self.url,
            f"the server refused the request: {exc}",
            "fix the token, its scopes or the environment and service names",
        )


def describe(exc: BaseException) -> str:
    """A failure in a few words for logs and ConfigUnavailable."""
    if isinstance(exc, ServerError | ClientError):
        return str(exc)
    if isinstance(exc, ProtocolError):
        return f"unreadable response: {exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if exc.__class__.__name__ not in text else text


class WatchState:
    """The long-poll loop's decisions, the same for the sync and the asyncio client.

    The watch reports changes against the copy it last reported (at first, the copy the
    client held when the watch started), not against what get() may have fetched since, so
    each change reaches the callbacks once.
    """

    def __init__(
        self,
        holder: Holder,
        token: str | None,
        instance: str,
        wait: float,
        backoff: Backoff,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.holder = holder
        self.token = token
        self.instance = instance
        self.wait = wait
        self.backoff = backoff
        self.draw = draw
        self.failures = 0
        self.reported, self.etag = holder.current()

    def request(self) -> tuple[str, dict[str, str], float | None]:
        """The next request: target, headers and the long-poll wait (None: a plain read)."""
        wait = self.wait if self.etag is not None else None
        headers = request_headers(self.token, self.instance, self.etag)
        return self.holder.endpoint.target(wait), headers, wait

    def on_response(self, response: Response) -> tuple[Change | None, float]:
        """A change to report (or None) and the seconds to wait before the next request."""
        try:
            fetched = self.holder.answered(response)
        except (ServerError, ClientError, ProtocolError) as exc:
            asked = exc.retry_after if isinstance(exc, ServerError) else None
            return None, self._failed(exc, asked)
        if self.failures:
            log.info("%s: the watch reaches the server again", self.holder.url)
        self.failures = 0
        if fetched is None:
            return None, 0.0
        change = change_between(self.reported, fetched.config, fetched.revision, fetched.etag)
        self.reported, self.etag = fetched.config, fetched.etag
        return change, 0.0

    def on_error(self, exc: BaseException) -> float:
        """The seconds to back off after a request that got no response."""
        return self._failed(exc, None)

    def _failed(self, exc: BaseException, asked_header: str | None) -> float:
        self.failures += 1
        self.holder.mark_stale()
        asked = retry_after(asked_header, dt.datetime.now(dt.UTC))
        delay = self.backoff.delay(self.failures, self.draw(), asked)
        level = (
            logging.WARNING if self.failures == 1 or isinstance(exc, ClientError) else logging.DEBUG
        )
        log.log(
            level,
            "%s: watch failed (%s); retrying in %.1fs (failure %d in a row)",
            self.holder.url,
            describe(exc),
            delay,
            self.failures,
        )
        return delay


class ClientOptions:
    """What ConfigClient and AsyncConfigClient are made of: the same options, checked alike."""

    def __init__(
        self,
        url: str,
        environment: str,
        service: str,
        *,
        token: str | None = None,
        cache_dir: str | None = None,
        instance: str | None = None,
        timeout: float = 10.0,
        ca_bundle: str | None = None,
        verify: bool = True,
        cache_secrets: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        from gitconf.client.protocol import default_instance, encode_request, ssl_context

        self.endpoint = Endpoint.of(url, environment, service)
        self.environment = environment
        self.service = service
        self.token = token
        self.instance = instance or default_instance()
        self.timeout = timeout
        self.backoff = backoff or Backoff()
        self.ca_bundle = ca_bundle
        self.verify = verify
        # Fails now, not at the first request, if a header would hold a line break.
        encode_request(self.endpoint, "/", request_headers(token, self.instance, None))
        cache = DiskCache(cache_dir) if cache_dir is not None else None
        self.holder = Holder(self.endpoint, environment, service, cache, cache_secrets)
        self._context = ssl_context(ca_bundle, verify) if self.endpoint.scheme == "https" else None
        self._setup()

    def _setup(self) -> None:
        """What a client adds to the options (its session, its watch's state)."""

    @property
    def url(self) -> str:
        """The config's URL."""
        return self.endpoint.url

    @property
    def stale(self) -> bool:
        """Whether the last attempt to reach the server failed, so the copy may be outdated."""
        return self.holder.stale

    @property
    def revision(self) -> str | None:
        """The revision of the copy held (X-Gitconf-Revision)."""
        return self.holder.revision

    @property
    def etag(self) -> str | None:
        """The ETag of the copy held."""
        return self.holder.etag
