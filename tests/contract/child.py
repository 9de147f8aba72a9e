"""A child process of the contract suite: it holds a backend's lock, or runs an upgrade to be killed half way.

usage: python -m contract.child SPEC_JSON hold     print "locked" once the lock is held, release it at stdin's end
       python -m contract.child SPEC_JSON upgrade  run every pending migration (CONTRACT_SIGNAL makes one sleep)

(run with ``tests/`` on ``sys.path``)
"""

from __future__ import annotations

import json
import sys

from contract.harness import open_backend
from migrator.runner import Runner


def main() -> None:
    spec, action = json.loads(sys.argv[1]), sys.argv[2]
    backend = open_backend(spec)
    if action == "hold":
        with backend.lock(30):
            print("locked", flush=True)
            sys.stdin.read()
    else:
        Runner(backend, lock_timeout=30).upgrade().raise_if_failed()
    backend.close()


if __name__ == "__main__":
    main()
