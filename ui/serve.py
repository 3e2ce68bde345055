"""Start the dashboard: ``python -m ui.serve [streamlit run options]``.

The same as ``streamlit run app.py [options]``, with the warm-up (:mod:`ui.warm`) started before the
server: torch, the library and the models load while the server starts and the browser loads the page
(``make run`` and the Docker image start the dashboard this way).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ui import warm

APP = Path(__file__).resolve().parent.parent / "app.py"


def main(argv: list[str] | None = None) -> int:
    warm.start()
    from streamlit.web import cli

    args = list(sys.argv[1:] if argv is None else argv)
    return cli.main(["run", str(APP), *args], prog_name="streamlit")


if __name__ == "__main__":
    raise SystemExit(main())
