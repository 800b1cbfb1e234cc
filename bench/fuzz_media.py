"""Coverage-guided fuzzing (atheris) of the entry points that read untrusted bytes: content
sniffing (``media.probe.sniff``), image decoding (``media.image.load_image``) and audio/video
probing and decoding (``media.audio.probe_audio`` / ``iter_audio``, ``media.video.probe_video``).

    python bench/fuzz_media.py --seconds 120            # needs `pip install atheris`
    copytrace bench fuzz_media --seconds 60 --target image

Seeds are the real media of tests/data (and the small synthetic headers of the hostile corpus).
The only exception a target may raise is ``MediaError``; anything else is a crash, written by
atheris to ``crash-*`` in the working folder (``--artifacts``). The run ends after ``--seconds``.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def _targets():
    from copytrace.media.audio import iter_audio, probe_audio
    from copytrace.media.image import ImageLimits, load_image
    from copytrace.media.probe import sniff
    from copytrace.media.video import probe_video

    limits = ImageLimits(max_pixels=4_000_000, max_side=4000)  # keep each input cheap

    def audio(path):
        probe_audio(path)
        for i, _ in enumerate(iter_audio(path, 8000, chunk_s=5.0)):
            if i > 4:
                break

    return {"sniff": sniff, "image": lambda p: load_image(p, limits), "audio": audio,
            "video": probe_video}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--target", choices=("sniff", "image", "audio", "video", "all"), default="all")
    ap.add_argument("--artifacts", default="out/fuzz", help="Where crashes and the corpus go.")
    args = ap.parse_args(argv)
    try:
        import atheris
    except ModuleNotFoundError:
        print("fuzz_media: atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    with atheris.instrument_imports():
        targets = _targets()
    from copytrace.errors import MediaError

    chosen = list(targets) if args.target == "all" else [args.target]
    out = Path(args.artifacts).resolve()
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for p in sorted(DATA.iterdir()):
        if p.suffix in (".jpg", ".ogg"):
            data = p.read_bytes()
            (corpus / p.name).write_bytes(data[: 64 * 1024])
    fd, tmp = tempfile.mkstemp(prefix="fuzz-", dir=out)
    os.close(fd)

    def one_input(data: bytes) -> None:
        if not data:
            return
        # The target is chosen by length, so every input keeps its bytes (and magic) intact.
        target = targets[chosen[len(data) % len(chosen)]]
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            target(tmp)
        except MediaError:
            pass

    sys.argv = [sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", "-rss_limit_mb=2048",
                f"-artifact_prefix={out}/", "-max_len=65536", "-timeout=20"]
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
