"""Strict JSON of a report and its Markdown, written side by side, atomically.

Non-finite numbers are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"`` so the file stays
strict JSON.

What :func:`write_documents` guarantees about ``STEM.json`` and ``STEM.md``
(:mod:`crosscheck.atomic` says how):

- each is whole: a crash, Ctrl-C or SIGTERM leaves the previous file (or none), never half of one, and no
  temporary file (one a SIGKILL leaves is removed by the next write there);
- both texts are rendered and both written to temporary files before either replaces its target; then
  the Markdown is replaced, the JSON last; SIGINT and SIGTERM wait until both are in place;
- both carry the same run id (``"run_id"`` in the JSON, a last-line comment in the Markdown), new for
  every write. Only SIGKILL or a power cut between the two replaces leaves a new Markdown beside an old
  JSON; :func:`documents_match` tells. Since the JSON is replaced last, a JSON file always has its
  Markdown beside it.

>>> jsonable({"a": float("inf"), "b": (1, 2.5)})
{'a': 'inf', 'b': [1, 2.5]}
>>> import tempfile
>>> out = tempfile.mkdtemp()
>>> paths = write_documents(out, "report", {"schema": SCHEMA}, "# Report\\n")
>>> documents_match(out, "report"), open(paths[1]).read().splitlines()[-1].startswith(RUN_ID_MARK)
(True, True)
"""

from __future__ import annotations

import json
import math
import os
import uuid

from crosscheck.atomic import atomic_write_many

SCHEMA = 1
RUN_ID_MARK = "<!-- crosscheck run id: "


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
    """Write ``out_dir/stem.json`` and ``out_dir/stem.md`` with a new run id in both (see the module
    docstring for what a kill leaves); return their paths.

    Raises:
        OSError: the directory cannot be written (the previous files, if any, survive whole).
    """
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    run_id = uuid.uuid4().hex
    text = json_text({**data, "run_id": run_id})
    body = markdown.rstrip("\n")
    markdown = f"{body}\n\n{RUN_ID_MARK}{run_id} -->\n"
    json_path, md_path = os.path.join(out, f"{stem}.json"), os.path.join(out, f"{stem}.md")
    atomic_write_many([(md_path, markdown), (json_path, text)])  # the JSON last
    return json_path, md_path


def run_ids(out_dir: str | os.PathLike, stem: str) -> tuple[str | None, str | None]:
    """The run ids recorded in ``out_dir/stem.json`` and ``out_dir/stem.md`` (``None``: missing, or
    written without one)."""
    base = os.path.join(os.fspath(out_dir), stem)
    try:
        with open(f"{base}.json", encoding="utf-8") as file:
            from_json = json.load(file).get("run_id")
    except (OSError, ValueError, AttributeError):
        from_json = None
    try:
        with open(f"{base}.md", encoding="utf-8") as file:
            last = file.read().rstrip().rpartition("\n")[2]
        from_markdown = last[len(RUN_ID_MARK) : -len(" -->")] if last.startswith(RUN_ID_MARK) else None
    except OSError:
        from_markdown = None
    return from_json, from_markdown


def documents_match(out_dir: str | os.PathLike, stem: str) -> bool:
    """Whether ``stem.json`` and ``stem.md`` in ``out_dir`` come from the same write (the same run id)."""
    from_json, from_markdown = run_ids(out_dir, stem)
    return from_json is not None and from_json == from_markdown
