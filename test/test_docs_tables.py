# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""The tables in the docs are what bench/docs_tables.py writes from the data files, not hand-typed text.

Fails when a checked-in page differs from what the generator makes of today's data (re-measured data,
or a figure edited by hand); also checks one renderer on a tiny fake data file and that a missing data
file is an error that names it.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "bench" / "docs_tables.py")
assert spec is not None and spec.loader is not None
docs_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs_tables)


@pytest.mark.parametrize("page", docs_tables.PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_checked_in_docs_match_their_data(page: Path) -> None:
    text = page.read_text()
    generated = docs_tables.generate(text)
    diff = "".join(difflib.unified_diff(text.splitlines(True), generated.splitlines(True), "checked in", "generated"))
    assert generated == text, (
        f"{page.relative_to(ROOT)} differs from its data: run `python bench/docs_tables.py`\n{diff}"
    )


def test_every_renderer_has_a_block() -> None:
    used = {
        name for page in docs_tables.PAGES for name in re.findall(r"bench/docs_tables\.py \((\w+)\)", page.read_text())
    }
    assert used == set(docs_tables.TABLES), f"renderers without a block in the docs: {set(docs_tables.TABLES) - used}"


def write_sim_rate(docs: Path) -> None:
    (docs / "results" / "bench").mkdir(parents=True)
    result = {"case": "alone", "robot": "quadruped", "steps": 3779, "sim_s": 188.9, "wall_s": 10.0}
    data = {"results": [{**result, "rtf": 18.891, "steps_per_s": 1377.8}]}
    (docs / "results" / "bench" / "sim_rate.json").write_text(json.dumps(data))


def test_renderer_writes_a_row_from_its_data_file(tmp_path: Path) -> None:
    write_sim_rate(tmp_path)
    lines = docs_tables.render("sim_rate", tmp_path).splitlines()
    assert lines == [
        "| case | robot | real-time factor | control steps/s |",
        "|---|---|---|---|",
        "| simulation alone | quadruped | 18.9 | 1,378 |",
    ]
    page = f"before\n{docs_tables.marker('sim_rate')}\n| stale |\n<!-- end generated -->\nafter\n"
    assert docs_tables.generate(page, tmp_path) == page.replace("| stale |", "\n".join(lines))


def test_missing_data_file_is_an_error_naming_it(tmp_path: Path) -> None:
    page = f"{docs_tables.marker('sim_rate')}\n| old |\n<!-- end generated -->\n"
    with pytest.raises(docs_tables.DocsTableError, match=r"results/bench/sim_rate\.json"):
        docs_tables.generate(page, tmp_path)
    with pytest.raises(docs_tables.DocsTableError, match="without its"):
        docs_tables.generate(page.replace("<!-- end generated -->", ""), tmp_path)
