"""precision="auto" runs INT8 only on CPUs whose int8 kernels cannot saturate (issue 17)."""
from copytrace.models.cpu import int8_exact


def test_vnni_or_amx_is_exact_plain_avx2_is_not():
    assert int8_exact({"avx2", "avx512f", "avx512_vnni"})
    assert int8_exact({"avx2", "avx_vnni"})
    assert int8_exact({"avx2", "amx_int8", "amx_tile"})
    assert not int8_exact({"sse4_2", "avx2", "fma"})
    assert not int8_exact({"avx2", "avx512f", "avx512bw"})  # Skylake-SP: AVX-512, no VNNI


def test_this_machine_answers():
    assert isinstance(int8_exact(), bool)
