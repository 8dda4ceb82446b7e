"""Writes the custom-connector package in connector/ from the same source as the served definition.

    python -m devtools.connector                      # connector/apiDefinition.swagger.json (placeholder host)
    python -m devtools.connector --host my-app.azurewebsites.net
    python -m devtools.connector --icon               # also redraw connector/icon.png

The definition is `shared.api.openapi.build_definition`, the function behind GET /api/openapi.json,
so the file and the running app cannot disagree (tests/api/test_connector.py compares them). The
command refuses to write a definition that breaks the connector rules (devtools/connector_rules.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from devtools.connector_rules import violations
from shared.api.openapi import build_definition

CONNECTOR_DIR = Path(__file__).resolve().parent.parent / "connector"
DEFINITION_PATH = CONNECTOR_DIR / "apiDefinition.swagger.json"
PROPERTIES_PATH = CONNECTOR_DIR / "apiProperties.json"
ICON_PATH = CONNECTOR_DIR / "icon.png"
# The committed file's host: replace it with your function app's host (or rerun with --host).
PLACEHOLDER_HOST = "YOUR-FUNCTION-APP.azurewebsites.net"
ICON_SIZE = 230  # Power Platform: a square PNG, 100 to 500 pixels, under 1 MB


def render_definition(host: str = PLACEHOLDER_HOST) -> str:
    return json.dumps(build_definition(f"https://{host}"), indent=2, ensure_ascii=False) + "\n"


def brand_color() -> str:
    properties: dict[str, Any] = json.loads(PROPERTIES_PATH.read_text(encoding="utf-8"))
    return str(properties["properties"]["iconBrandColor"])


def draw_icon(path: Path = ICON_PATH) -> None:
    """A white pen stroke and signature line on the brand colour (the icon background must be the
    brand colour, which Power Platform also paints around it)."""
    from PIL import Image, ImageDraw  # only this command draws; the app never imports Pillow

    size = ICON_SIZE
    image = Image.new("RGB", (size, size), brand_color())
    pen = ImageDraw.Draw(image)
    white = (255, 255, 255)
    # The signature: a looping stroke above the line.
    points = [(48, 140), (70, 96), (84, 86), (92, 104), (86, 138), (100, 118), (118, 92), (128, 100),
              (124, 132), (140, 116), (156, 104), (164, 120), (182, 112)]
    pen.line(points, fill=white, width=9, joint="curve")
    pen.line([(40, 166), (190, 166)], fill=white, width=6)
    # A check mark in a circle: the document comes back signed.
    pen.ellipse((150, 30, 200, 80), outline=white, width=6)
    pen.line([(163, 56), (172, 66), (189, 44)], fill=white, width=6, joint="curve")
    image.save(path, format="PNG", optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=PLACEHOLDER_HOST, help="the function app's host name")
    parser.add_argument("--icon", action="store_true", help="redraw connector/icon.png too")
    args = parser.parse_args(argv)
    text = render_definition(args.host)
    broken = violations(json.loads(text))
    if broken:
        print("the definition breaks the connector rules:\n  " + "\n  ".join(broken), file=sys.stderr)
        return 1
    DEFINITION_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {DEFINITION_PATH}")
    if args.icon:
        draw_icon()
        print(f"wrote {ICON_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
