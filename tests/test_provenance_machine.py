"""The machine a timing comes from is named precisely enough to tell 2-core machines apart (issue 14, item 0):
two "AMD EPYC" machines that differ by 2x in FP32 width differ in their family/model numbers."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from editbench.runner import provenance
from editbench.runner.provenance import cpu_generation, machine


@pytest.mark.parametrize("family,model,want", [
    (0x17, 0x01, "Zen/Zen+"),   # EPYC 7001 (Naples)
    (0x17, 0x08, "Zen/Zen+"),   # Ryzen 2000 (Zen+)
    (0x17, 0x31, "Zen 2"),      # EPYC 7002 (Rome): this project's 2-core "AMD EPYC"
    (0x17, 0x71, "Zen 2"),      # Ryzen 3000 (Matisse)
    (0x19, 0x01, "Zen 3"),      # EPYC 7003 (Milan)
    (0x19, 0x21, "Zen 3"),      # Ryzen 5000 (Vermeer)
    (0x19, 0x11, "Zen 4"),      # EPYC 9004 (Genoa)
    (0x19, 0x61, "Zen 4"),      # Ryzen 7000 (Raphael)
    (0x1A, 0x02, "Zen 5"),      # EPYC 9005 (Turin)
])
def test_amd_generation_from_family_and_model(family, model, want):
    assert cpu_generation("AuthenticAMD", family, model) == want


@pytest.mark.parametrize("model,want", [
    (0x55, "Skylake-SP/Cascade Lake"),
    (0x6A, "Ice Lake-SP"),
    (0x8F, "Sapphire Rapids"),
    (0xCF, "Emerald Rapids"),   # model 207: the 2-core "Intel(R) Xeon(R) Processor" of 2026-12-06
])
def test_intel_xeon_generation_from_model(model, want):
    assert cpu_generation("GenuineIntel", 6, model) == want


def test_no_generation_guessed_for_other_vendors_or_missing_numbers():
    assert cpu_generation("GenuineIntel", 6, 0x9E) is None   # a desktop part (Coffee Lake): not in the table
    assert cpu_generation("CentaurHauls", 6, 0x55) is None
    assert cpu_generation("AuthenticAMD", None, 49) is None
    assert cpu_generation("AuthenticAMD", 0x15, 0x02) is None  # pre-Zen (Bulldozer family): not in the table


def test_machine_reads_cpuinfo_fields(monkeypatch, tmp_path):
    fake = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\n"
            "model name\t: AMD EPYC\ncpu MHz\t\t: 2199.998\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\n")
    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: fake if str(self) == "/proc/cpuinfo"
                        else real_read(self, *a, **k))
    provenance._cpuinfo.cache_clear()
    try:
        m = machine()
    finally:
        provenance._cpuinfo.cache_clear()
    assert (m["cpu"], m["cpu_vendor"], m["cpu_family"], m["cpu_model_number"], m["cpu_generation"], m["mhz"]) == \
        ("AMD EPYC", "AuthenticAMD", 23, 1, "Zen/Zen+", 2200)
    assert m["simd"] and m["threads"] >= 1 and json.dumps(m)


def _benchmark(name):
    """A module of benchmarks/ (they import each other by bare name)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_every_named_generation_has_a_nominal_rate():
    """bench_machine's FLOP/cycle table is keyed by provenance's generation names: a name in one and not the other
    would silently drop the nominal peak."""
    names = {name for table in (provenance._AMD_GENERATIONS, provenance._INTEL_GENERATIONS) for *_, name in table}
    assert names == set(_benchmark("bench_machine").FLOP_PER_CYCLE)


def test_bench_z_floor_replayed_products_counts_every_weight_both_ways():
    """The z floor's product sequence: forward and backward through each weight and the head, FLOP exact."""
    replayed_products = _benchmark("bench_z_floor").replayed_products
    import torch
    weights = [torch.randn(8, 4), torch.randn(4, 8)]
    head = torch.randn(32, 4)
    s, flops = replayed_products(weights, head, rows=3, head_rows=2, repeats=1)
    assert s > 0 and flops == 4 * 3 * (32 + 32) + 4 * 2 * 128
