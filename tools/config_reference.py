"""Write (or check) ``config/README.md``, the configuration reference, from the config schema.

    python tools/config_reference.py           # rewrite config/README.md
    python tools/config_reference.py --check   # exit 1 if it differs from the schema's

The page is :func:`pipeline.config.reference.config_reference` of
``workflow/schemas/config.schema.yaml``; ``tests/config/test_reference.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pipeline.config.reference import config_reference  # noqa: E402
from pipeline.config.validation import load_yaml  # noqa: E402

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PAGE = REPO / "config" / "README.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the page is current")
    args = parser.parse_args(argv)
    page = config_reference(load_yaml(SCHEMA))
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != page:
            print(f"{PAGE} is stale: run python tools/config_reference.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
