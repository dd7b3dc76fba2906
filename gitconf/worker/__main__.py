"""`python -m gitconf.worker`: the compile worker process (started by the server)."""

import sys

from gitconf.worker.child import main

sys.exit(main(sys.argv[1:]))
