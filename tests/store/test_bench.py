"""`rrsis bench store --quick` runs end to end and writes its JSON and Markdown reports."""

from __future__ import annotations

import json

import pytest

from rrsis_engine.bench.store import run


@pytest.mark.slow
def test_bench_store_quick(tmp_path):
    assert run(["--quick", "--postgres", "no", "--out-dir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "store.json").read_text())
    assert res["sqlite"]["latency"]["turns"] == 30 and res["sqlite"]["throughput_8"]["all_saved"]
    assert res["generate"]["turns"] == 2000
    assert {e["format"]: e["annotations"] for e in res["export"]} == {"coco": 200, "jsonl": 200, "geojson": 50}
    assert "p95" in (tmp_path / "store.md").read_text()
