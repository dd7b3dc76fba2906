"""A compile worker with a bug: every compile raises (for tests of how the server copes).

Run as `python -m tests.worker.faulty` with the arguments of `python -m gitconf.worker`.
"""

from __future__ import annotations

import sys

from gitconf.worker import child
from gitconf.worker.service import CompileService


def _broken(self: CompileService, *args: object, **kwargs: object) -> object:
    raise RuntimeError("boom")


CompileService.compile = _broken  # type: ignore[method-assign]
sys.exit(child.main(sys.argv[1:]))
