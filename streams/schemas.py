"""Export the JSON Schemas of every event to ``docs/schemas/``."""

from __future__ import annotations

import json
from pathlib import Path

from streams.events import EVENT_TYPES

DEFAULT_DIR = Path("docs/schemas")


def render_schemas() -> dict[str, str]:
    """File name -> JSON Schema text of every event type."""
    out: dict[str, str] = {}
    for name, cls in sorted(EVENT_TYPES.items()):
        schema = cls.model_json_schema(mode="serialization")
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def export_schemas(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every schema file; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for fname, text in render_schemas().items():
        path = directory / fname
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale_schemas(directory: Path = DEFAULT_DIR) -> list[str]:
    """Names of schema files that are missing or differ from the code."""
    stale = []
    for fname, text in render_schemas().items():
        path = directory / fname
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(fname)
    return stale
