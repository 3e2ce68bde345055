"""``python -m tests.fakes.sentinelhub``: run the fake standalone for offline development."""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

from lulc_core.providers.demo import DEMO_DIR
from tests.fakes.sentinelhub.server import FakeSentinelHub


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.fakes.sentinelhub",
                                 description="Run a local fake of the Sentinel Hub services over Sentinel-2 scenes.")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--scenes", default=str(DEMO_DIR), help="scene folder (default: the bundled demo scenes)")
    ap.add_argument("--client-id", default="test-client")
    ap.add_argument("--client-secret", default="test-secret")
    ap.add_argument("--http", action="store_true", help="plain HTTP (clients then need OAUTHLIB_INSECURE_TRANSPORT=1)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    fake = FakeSentinelHub(args.scenes, args.client_id, args.client_secret, host=args.host, port=args.port,
                           tls=False if args.http else None)
    import signal

    def _terminate(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with fake:
        print(fake.describe(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
