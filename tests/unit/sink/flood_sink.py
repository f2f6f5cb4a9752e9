"""A bounce sink in its own process with a low open-files limit, for the connection-flood tests.

``python -m tests.unit.sink.flood_sink MAILDIR TOKEN_DIR NOFILE PORT``: starts the sink on
127.0.0.1:PORT, prints ``budget N`` (its global session cap), then obeys lines on stdin:
``fill K`` opens descriptors until only K are free (another part of the process using them, as
the prober does in ``audit``), ``unfill`` closes them, ``stats`` prints the sink's counters as
JSON, ``stop`` ends. Its log goes to stderr, which the test counts.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import sys

from auditor.collect.sink import BounceSink, TokenStore


def main() -> int:
    maildir, token_dir, nofile, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sink = BounceSink("sink.test", maildir, port=port, tokens=TokenStore(token_dir))
    sink.start()
    print(f"budget {getattr(sink.handler, 'max_connections', 0)}", flush=True)
    filler: list[int] = []
    for line in sys.stdin:
        cmd, *arg = line.split()
        if cmd == "fill":
            while len(os.listdir("/proc/self/fd")) < nofile - int(arg[0]):
                filler.append(os.open("/dev/null", os.O_RDONLY))
            print("filled", flush=True)
        elif cmd == "unfill":
            for fd in filler:
                os.close(fd)
            filler.clear()
            print("unfilled", flush=True)
        elif cmd == "stats":
            s = sink.stats
            print(
                json.dumps({"accepted": s.accepted, "refused_connections": s.refused_connections}), flush=True
            )
        elif cmd == "stop":
            break
    sink.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
