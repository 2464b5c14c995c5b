"""``python -m api [--host H] [--port P]``: the recommendation API on uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys

from core.config import get_settings
from core.errors import ConfigError


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes; each serves and logs on its own"
    )
    args = parser.parse_args()
    try:
        get_settings()  # a bad setting is one line here, not a traceback in each worker
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import uvicorn

    uvicorn.run(
        "api.app:create_app",
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
