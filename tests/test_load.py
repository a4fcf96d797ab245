"""A small version of bench/load_test.py: concurrent users get exactly their solo answers, no errors."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from load_test import make_inputs, run_load  # noqa: E402


def test_eight_concurrent_clients(server, tmp_path, data_dir):
    paths = make_inputs(tmp_path, 6, data_dir)
    r = run_load(server, paths, clients=8, requests=5)
    assert r["errors"] == [] and r["mismatches"] == []
    assert r["answered"] == 40
    print(f"\n8x5: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms")
