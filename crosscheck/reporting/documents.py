"""Strict JSON of a report and its Markdown, written side by side, atomically.

Non-finite numbers are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` so the file stays
strict JSON. Both texts are rendered before either file is touched, and each file is written with
:func:`crosscheck.atomic.atomic_write`: a crash leaves the previous file (or none), never half of one.

>>> jsonable({"a": float("inf"), "b": (1, 2.5)})
{'a': 'inf', 'b': [1, 2.5]}
"""

from __future__ import annotations

import json
import math
import os

from crosscheck.atomic import atomic_write

SCHEMA = 1


def jsonable(value):
    """Plain JSON values: floats stay floats unless non-finite (then "inf"/"-inf"/"nan")."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return number


def json_text(data) -> str:
    """``data`` as indented strict JSON text (see :func:`jsonable`)."""
    return json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n"


def write_documents(out_dir: str | os.PathLike, stem: str, data: dict, markdown: str) -> tuple[str, str]:
    """Write ``out_dir/stem.json`` and ``out_dir/stem.md``; return their paths.

    Raises:
        OSError: the directory cannot be written (the previous files, if any, survive whole).
    """
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    text = json_text(data)
    json_path, md_path = os.path.join(out, f"{stem}.json"), os.path.join(out, f"{stem}.md")
    atomic_write(json_path, text)
    atomic_write(md_path, markdown)
    return json_path, md_path
