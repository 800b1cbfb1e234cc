"""``import copytrace`` (and its CLI module) stays cheap: no torch, no runtime, no model."""
import subprocess
import sys

HEAVY = ("torch", "openvino", "onnxruntime", "faiss", "av", "cv2")


def test_import_is_lean():
    code = (
        "import sys, copytrace, copytrace.cli, copytrace.types, copytrace.models;"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
