"""AsyncConfigClient: ConfigClient's contract on asyncio, with no dependency beyond the stdlib.

Each request is one HTTP/1.1 exchange over asyncio streams on its own connection (`Connection:
close`), read to the end and parsed by `protocol.parse_response`: a config read is small, and
a long poll holds its connection for its whole wait anyway. `close()` cancels the watch task,
which ends a long poll in progress at once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

from gitconf.client.changes import Change
from gitconf.client.protocol import (
    MAX_RESPONSE,
    ClientError,
    ProtocolError,
    Response,
    ServerError,
    encode_request,
    parse_response,
    request_headers,
)
from gitconf.client.state import ClientOptions, WatchState, describe

__all__ = ["AsyncConfigClient"]

log = logging.getLogger("gitconf.client")

AsyncCallback = Callable[[Change], object]  # a plain function or a coroutine function


class AsyncConfigClient(ClientOptions):
    """One (environment, service)'s config from a gitconf server, on asyncio.

    The same options and behaviour as ConfigClient: `await get()`, `watch(callback)` (the
    callback may be a coroutine function), `await close()` or `async with`.
    """

    def _setup(self) -> None:
        self._callbacks: list[AsyncCallback] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def _exchange(self, target: str, headers: dict[str, str], timeout: float) -> Response:
        host, port = self.endpoint.host, self.endpoint.port
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host,
                port,
                ssl=self._context,
                server_hostname=host if self._context is not None else None,
            )
            try:
                writer.write(encode_request(self.endpoint, target, headers))
                await writer.drain()
                data = bytearray()
                while chunk := await reader.read(65536):
                    data += chunk
                    if len(data) > MAX_RESPONSE:
                        raise ProtocolError(f"the response passed {MAX_RESPONSE} bytes")
            finally:
                writer.close()
        return parse_response(bytes(data))

    async def get(self) -> Any:
        """The config; the cached copy (stale) if the server is down; else ConfigUnavailable."""
        headers = request_headers(self.token, self.instance, self.holder.validator())
        try:
            response = await self._exchange(self.endpoint.target(), headers, self.timeout)
            self.holder.answered(response)
        except ClientError as exc:
            raise self.holder.refused(exc) from None
        except (OSError, ProtocolError, ServerError) as exc:
            return self.holder.fallback(describe(exc))
        return self.holder.held()

    def watch(self, callback: AsyncCallback, *, wait: float = 60.0) -> None:
        """Call callback(change) on each change, from a long-poll task on the running loop."""
        if self._closed:
            raise RuntimeError(f"{self.url}: this client is closed")
        self._callbacks.append(callback)
        if self._task is None:
            state = WatchState(self.holder, self.token, self.instance, wait, self.backoff)
            self._task = asyncio.get_running_loop().create_task(
                self._run(state), name=f"gitconf-watch {self.environment}/{self.service}"
            )

    async def _run(self, state: WatchState) -> None:
        while True:
            target, headers, wait = state.request()
            try:
                response = await self._exchange(target, headers, self.timeout + (wait or 0))
            except (OSError, ProtocolError) as exc:
                delay = state.on_error(exc)
            else:
                change, delay = state.on_response(response)
                if change is not None:
                    await self._deliver(change)
            if delay:
                await asyncio.sleep(delay)

    async def _deliver(self, change: Change) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(change)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("%s: a watch callback raised; the watch goes on", self.url)

    async def close(self) -> None:
        """Stop the watch, ending a long poll in progress."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # close() itself was cancelled: pass that on

    async def __aenter__(self) -> AsyncConfigClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
