"""Whether this CPU runs our INT8 files exactly.

Our INT8 weights use the full ±127 range. x86 CPUs without VNNI (AVX2 or AVX-512 without
VNNI: Haswell to Skylake, Zen 2/3) multiply u8 activations by s8 weights with VPMADDUBSW, whose
int16 pair sums saturate at 255·127·2; OpenVINO then drifts far from the QDQ graph (shipped
image INT8 against FP32: min cosine 0.66, issue 17). ``precision="auto"`` therefore runs FP32
on such CPUs until the INT8 files use 7-bit weights. VNNI (vpdpbusd), AMX and ARM dot products
accumulate in int32 and are exact.
"""
from __future__ import annotations

import functools
import platform

EXACT_INT8_FLAGS = {"avx512_vnni", "avx_vnni", "amx_int8"}


def int8_exact(cpu_flags: set[str] | None = None) -> bool:
    """True unless this is an x86 CPU whose flags name no VNNI/AMX instruction."""
    if cpu_flags is None:
        if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
            return True
        cpu_flags = _x86_flags()
        if cpu_flags is None:  # flags unknown (not Linux): trust the runtime
            return True
    return bool(cpu_flags & EXACT_INT8_FLAGS)


@functools.lru_cache(maxsize=1)
def _x86_flags() -> frozenset[str] | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None
