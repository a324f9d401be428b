"""A stand-in for ``python -m unetkit`` in the task-queue tests: cheap commands with known behaviour.

``echo WORDS`` prints and exits 0; ``fail MESSAGE`` prints ``error: MESSAGE`` and exits 2; ``count N`` prints
``step i/N`` lines and exits 0; ``sleep`` prints ``started`` and waits to be stopped; ``stubborn`` also ignores
SIGTERM; ``mark FILE`` writes FILE (a new file; exit 3 when it exists) and exits 0.
"""

import signal
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    if command == "echo":
        print(" ".join(args))
        return 0
    if command == "fail":
        print("working")
        print(f"error: {' '.join(args)}", file=sys.stderr)
        return 2
    if command == "count":
        for i in range(1, int(args[0]) + 1):
            print(f"step {i}/{args[0]}")
        return 0
    if command == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if command in ("sleep", "stubborn"):
        print("started", flush=True)
        time.sleep(600)
        return 0
    if command == "mark":
        path = Path(args[0])
        if path.exists():
            return 3
        path.write_text("marked")
        return 0
    print(f"error: unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
