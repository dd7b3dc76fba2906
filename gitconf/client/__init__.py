"""Read a service's config from gitconf: `ConfigClient` (threads) and `AsyncConfigClient` (asyncio).

```python
from gitconf.client import ConfigClient

client = ConfigClient("https://config.internal", "production", "payments",
                      token=token, cache_dir="/var/cache/payments-config")
config = client.get()          # the cached copy, client.stale True, if the server is down
client.watch(lambda change: print(change.changed, change.revision))
```

`protocol` holds what both say and hear (no I/O), `state` the copy held and the watch's
decisions, `cache` the disk copy, `sync` and `aio` move the bytes.
"""

from gitconf.client.aio import AsyncConfigClient
from gitconf.client.backoff import Backoff
from gitconf.client.changes import Change
from gitconf.client.protocol import SECRETS_HEADER, USER_AGENT
from gitconf.client.state import ConfigUnavailable
from gitconf.client.sync import ConfigClient

__all__ = [
    "SECRETS_HEADER",
    "USER_AGENT",
    "AsyncConfigClient",
    "Backoff",
    "Change",
    "ConfigClient",
    "ConfigUnavailable",
]
