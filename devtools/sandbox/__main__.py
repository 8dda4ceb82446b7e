"""`python -m devtools.sandbox --host 127.0.0.1 --port 8480 --user NAME:PASSWORD [knobs]`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from types import FrameType

from devtools.sandbox import knobs as knob_flags
from devtools.sandbox.sandbox import Sandbox
from devtools.sandbox.server import make_server


def parse_users(values: list[str]) -> dict[str, str]:
    users = {}
    for value in values:
        name, separator, password = value.partition(":")
        if not separator or not name or not password:
            raise SystemExit(f"--user wants NAME:PASSWORD, got {value.split(':')[0]!r}:…")
        users[name] = password
    return users


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.sandbox",
                                     description="Stateful Connective eSignatures API v3 sandbox")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8480)
    parser.add_argument("--user", action="append", default=[], metavar="NAME:PASSWORD",
                        help="an API user (one connection); repeat for more")
    knob_flags.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        defaults = knob_flags.from_arguments(args)
    except ValueError as error:
        parser.error(str(error))
    users = parse_users(args.user or ["sandbox:sandbox"])
    sandbox = Sandbox(defaults, users, bind_url=f"http://{args.host}:{args.port}")
    server = make_server(sandbox, args.host, args.port)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Connective sandbox on http://{args.host}:{server.server_port}/webportalapi/v3 "
          f"(users: {', '.join(users)}; admin: /_sandbox/)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sandbox.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
