"""Stage innocent media that looks like real uploads (issue 19): the negatives corpus.

Nothing here comes from the train or eval packages of shared/DATA.md. Debian packages are
fetched with ``apt-get download`` and unpacked (``_staging.stage_packages``, no install); clips
are assembled from their files, and the video kinds are rendered with PyAV. Every *source file*
is assigned to one split by a hash of its package and path (pictures: of their variant group,
perceptual duplicates dropped) (``calibration``, ``heldout``, and for
pictures also ``reference``), so no source is shared between the part a threshold is fitted on
and the part that is reported. Synthetic items (noise, hum, flat colour, sky/water) draw their
seeds from their split. The manifest names each item's kind, split, sources and licences.

Audio kinds: speech (Asterisk voice prompts in five languages, Hedgewars character voices),
music of other genres (music-on-hold, game themes, ringtones), sfx (game sound effects), ui
(desktop sound themes), city (Lincity-NG's traffic, industry, market and farm loops), noise
(synthetic: white/pink/brown noise, mains hum with harmonics, fan-like band noise, near-silence
with hum). Video kinds: slideshow, title (static cards), fade, flat (colour and gradients),
lowdetail (sky, water, snow), dark, screen (scrolling text, terminal-like), game (pans over game
backgrounds). ``reference`` videos are low-detail "animations" to register in the library the
innocents are queried against: detailed pans with a flat pastel-sky, dark or gradient stretch.

    python scripts/stage_negatives.py                      # .stage/negatives + data/negatives
    python scripts/stage_negatives.py --audio-per-kind 80 --video-per-kind 8
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import re
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _staging as st  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SR = 16000
AUDIO_EXT = (".wav", ".ogg", ".oga", ".mp3", ".flac", ".opus")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp")
SIZE = (480, 270)
FPS = 25

# package -> audio kind by path (first matching rule); None: skip the file.
AUDIO_RULES: dict[str, list[tuple[str, str | None]]] = {
    **{f"asterisk-core-sounds-{lang}-wav": [(r".", "speech")]
       for lang in ("en", "fr", "es", "it", "ru")},
    "asterisk-moh-opsound-wav": [(r".", "music")],
    "hedgewars-data": [(r"/voices/", "speech"), (r"/Music/", "music"), (r"/Sounds/", "sfx")],
    "openclonk-data": [(r"Music\.ocg/", "music")],
    "supertux-data": [(r"/music/", "music"), (r"/sounds/", "sfx")],
    "extremetuxracer-data": [(r"/music/", "music"), (r".", "sfx")],
    "colobot-common-sounds": [(r"/music/", "music"), (r"/sounds/", "sfx")],
    "frozen-bubble-data": [(r"/music/|\.xm$|\.mod$", None), (r".", "sfx")],
    "xmoto-data": [(r".", "sfx")],
    "pingus-data": [(r"/music/", "music"), (r".", "sfx")],
    "chromium-bsu-data": [(r".", "sfx")],
    "blinken": [(r".", "sfx")],
    "tuxtype-data": [(r".", "sfx")],
    "lincity-ng-data": [(r"/sounds/", "city"), (r"/music/", "music")],
    "lomiri-sounds": [(r"ringtones", "music"), (r".", "ui")],
    "sound-theme-freedesktop": [(r".", "ui")],
    "oxygen-sounds": [(r".", "ui")],
    "deepin-sound-theme": [(r".", "ui")],
    "yaru-theme-sound": [(r".", "ui")],
}
# Pictures for slideshows, fades, dark scenes and game pans (drawn art, game backgrounds,
# desktop previews: few camera photos exist outside the train/eval packages).
IMAGE_RULES: dict[str, str] = {
    "gnome-backgrounds": r"/backgrounds/",
    "desktop-base": r"sddm-preview|plymouth_background|/wallpaper/contents/images/",
    "sway-backgrounds": r".",
    "supertux-data": r"/images/background/",
    "hedgewars-data": r"/Themes/[^/]+/(Sky|Horizont|LandTex|Border)",
    "extremetuxracer-data": r"/terrains/|/sky",
    "lincity-ng-data": r"/images/(gui/)?(background|splash)",
}
TEXT_PACKAGES = ("hedgewars-data", "supertux-data", "lincity-ng-data", "colobot-common-sounds")
PACKAGES = sorted(set(AUDIO_RULES) | set(IMAGE_RULES))
AUDIO_KINDS = ("speech", "music", "sfx", "ui", "city", "noise")
VIDEO_KINDS = ("slideshow", "title", "fade", "flat", "lowdetail", "dark", "screen", "game")
DURATIONS_S = (2.0, 3.0, 5.0, 5.0, 10.0, 10.0, 20.0, 30.0)

log = logging.getLogger("stage_negatives")


def split_of(key: str, parts: tuple[str, ...]) -> str:
    return parts[int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % len(parts)]


def seed_of(*parts) -> int:
    return int(hashlib.sha1("/".join(map(str, parts)).encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------------------------- audio


def audio_sources(roots: dict[str, Path]) -> dict[str, dict[str, list[tuple[str, Path]]]]:
    """{split: {kind: [(package, file)]}} for every audio file the rules name."""
    out: dict[str, dict[str, list]] = {"calibration": {}, "heldout": {}}
    for pkg, rules in AUDIO_RULES.items():
        for f in sorted(roots[pkg].rglob("*")):
            if not f.is_file() or f.suffix.lower() not in AUDIO_EXT:
                continue
            rel = str(f.relative_to(roots[pkg]))
            kind = next((k for pat, k in rules if re.search(pat, "/" + rel)), None)
            if kind is None:
                continue
            split = split_of(f"{pkg}/{rel}", ("calibration", "heldout"))
            out[split].setdefault(kind, []).append((pkg, f))
    return out


def load_mono(path: Path) -> np.ndarray:
    from copytrace.media.audio import load_audio

    return load_audio(path, SR, max_s=120.0)


def audible(x: np.ndarray) -> bool:
    return x.size > SR // 4 and float(np.sqrt(np.mean(x ** 2))) > 10 ** (-50 / 20)


def assemble(sources: list[tuple[str, Path]], target_s: float, rng: random.Random,
             cache: dict) -> tuple[np.ndarray, list[tuple[str, Path]]]:
    """A clip of about ``target_s``: an excerpt of one long file, or short files back to back
    with short pauses (as prompts, effects and chimes follow each other in a real upload)."""
    n = int(target_s * SR)
    parts, used = [], []
    total = 0
    for _ in range(60):
        pkg, f = rng.choice(sources)
        if f not in cache:
            try:
                cache[f] = load_mono(f)
            except Exception as e:  # noqa: BLE001 - a broken file in a package is skipped
                log.warning("skip %s: %s", f, e)
                cache[f] = np.zeros(0, np.float32)
        x = cache[f]
        if not audible(x):
            continue
        if len(x) > n - total:
            a = rng.randrange(0, len(x) - (n - total) + 1)
            x = x[a:a + n - total]
        parts.append(x)
        used.append((pkg, f))
        total += len(x)
        if total >= n:
            break
        gap = np.zeros(int(rng.uniform(0.1, 0.6) * SR), np.float32)
        parts.append(gap)
        total += len(gap)
    clip = np.concatenate(parts)[:n] if parts else np.zeros(0, np.float32)
    return clip, used


def synth_noise(target_s: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    n = int(target_s * SR)
    what = rng.choice(["white", "pink", "brown", "hum", "fan", "quiet-hum"])
    t = np.arange(n) / SR
    white = rng.standard_normal(n)
    if what == "white":
        x = white
    elif what in ("pink", "brown", "fan"):
        spec = np.fft.rfft(white)
        f = np.fft.rfftfreq(n, 1 / SR)
        f[0] = f[1]
        if what == "pink":
            spec /= np.sqrt(f)
        elif what == "brown":
            spec /= f
        else:  # a fan: band noise around a blade tone
            centre = rng.uniform(150, 900)
            spec *= np.exp(-0.5 * ((f - centre) / (centre * 0.4)) ** 2)
        x = np.fft.irfft(spec, n)
        if what == "fan":
            x += 0.3 * x.std() * np.sin(2 * np.pi * centre * t)
    else:
        base = rng.choice([50.0, 60.0])
        x = sum(rng.uniform(0.2, 1.0) / h * np.sin(2 * np.pi * base * h * t + rng.uniform(0, 6))
                for h in range(1, 8))
        x = x + rng.uniform(0.01, 0.1) * white
    x = x / (np.abs(x).max() + 1e-9)
    level = 10 ** (rng.uniform(-40, -20) / 20) if what == "quiet-hum" else rng.uniform(0.1, 0.6)
    return (x * level).astype(np.float32), str(what)


def write_wav(path: Path, x: np.ndarray) -> None:
    import wave

    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())


def build_audio(roots: dict[str, Path], out: Path, per_kind: int) -> list[dict]:
    items = []
    sources = audio_sources(roots)
    for split in ("calibration", "heldout"):
        cache: dict = {}
        for kind in AUDIO_KINDS:
            rng = random.Random(seed_of("audio", split, kind))
            nrng = np.random.default_rng(seed_of("noise", split, kind))
            folder = out / "audio" / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            pool = sources[split].get(kind, [])
            if kind != "noise" and not pool:
                log.warning("no %s sources in %s", kind, split)
                continue
            for i in range(per_kind):
                target = rng.choice(DURATIONS_S)
                if kind == "noise":
                    clip, what = synth_noise(target, nrng)
                    used, note = [], f"synthetic {what}"
                else:
                    clip, used = assemble(pool, target, rng, cache)
                    note = ""
                if len(clip) < SR:
                    continue
                path = folder / f"{kind}{i:03d}.wav"
                write_wav(path, clip)
                items.append({"path": str(path.relative_to(out)), "signal": "audio",
                              "kind": kind, "split": split, "duration_s": len(clip) / SR,
                              "note": note, "sources": sorted({f"{p}:{f.relative_to(roots[p])}"
                                                               for p, f in used})})
            log.info("audio %s %s: %d", split, kind, sum(
                1 for it in items if it["split"] == split and it["kind"] == kind))
    return items


# ---------------------------------------------------------------------------------- video


def picture_group(pkg: str, rel: str) -> str:
    """Pictures that are variants of one another (a wallpaper's light and dark versions, a
    theme's numbered layers) share a group, and a group lies in one split."""
    stem = re.sub(r"([-_. ]?(l|d|light|dark|day|night|top|middle|bottom|\d+))+$", "",
                  Path(rel).stem, flags=re.IGNORECASE)
    return f"{pkg}{Path(rel).parent}/{stem}"


def image_sources(roots: dict[str, Path]) -> dict[str, list[tuple[str, Path]]]:
    """{split: [(package, picture)]}: split by picture group; a picture whose perceptual hash is
    within 10 bits of an earlier one's (the same picture shipped twice) is dropped."""
    out: dict[str, list] = {"calibration": [], "heldout": [], "reference": []}
    seen: list[int] = []
    for pkg, pat in IMAGE_RULES.items():
        for f in sorted(roots[pkg].rglob("*")):
            rel = "/" + str(f.relative_to(roots[pkg]))
            if f.suffix.lower() not in IMAGE_EXT or not re.search(pat, rel) or "icon" in rel:
                continue
            try:
                with Image.open(f) as im:
                    if min(im.size) < 128:
                        continue
                    ph, _ = st.perceptual_hashes(load_picture(f))
            except Exception:  # noqa: BLE001 - unreadable pictures are skipped
                continue
            if any(bin(ph ^ o).count("1") <= 10 for o in seen):
                continue
            seen.append(ph)
            split = split_of(picture_group(pkg, rel), ("calibration", "heldout", "reference"))
            out[split].append((pkg, f))
    return out


def text_lines(roots: dict[str, Path]) -> list[str]:
    lines = []
    for pkg in TEXT_PACKAGES:
        doc = roots[pkg] / "usr/share/doc" / pkg / "copyright"
        if doc.exists():
            lines += [ln.rstrip() for ln in doc.read_text(errors="replace").splitlines()]
    return [ln[:60] for ln in lines if ln.strip()] or ["copytrace"]


def load_picture(path: Path) -> Image.Image:
    im = Image.open(path)
    im.draft("RGB", (SIZE[0] * 2, SIZE[1] * 2))
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert("RGB")


def cover(im: Image.Image, size=SIZE, zoom: float = 1.0, pan: tuple[float, float] = (0.5, 0.5)):
    """Crop ``im`` to the aspect of ``size`` (zoomed in by ``zoom``), at ``pan`` (0..1)."""
    w, h = im.size
    ar = size[0] / size[1]
    cw, ch = (w, w / ar) if w / h < ar else (h * ar, h)
    cw, ch = cw / zoom, ch / zoom
    x0 = (w - cw) * min(1.0, max(0.0, pan[0]))
    y0 = (h - ch) * min(1.0, max(0.0, pan[1]))
    return im.resize(size, Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))


def font(px: int):
    for name in ("DejaVuSans.ttf", "DejaVuSansMono.ttf"):
        try:
            return ImageFont.truetype(name, px)
        except OSError:
            continue
    return ImageFont.load_default()


def soft_noise(rng: np.random.Generator, size, scale: int, t: float = 0.0) -> np.ndarray:
    """Smooth random field in [0, 1] (blurred, upsampled noise), drifting with ``t``."""
    w, h = size
    g = rng.random((h // scale + 3, w // scale + 3)).astype(np.float32)
    img = Image.fromarray((g * 255).astype(np.uint8)).resize(
        ((w // scale + 3) * scale, (h // scale + 3) * scale), Image.BICUBIC)
    off = int(t) % scale
    return np.asarray(img, np.float32)[off:off + h, off:off + w] / 255.0


class Renderer:
    """Frames of one kind of innocent video, as a function of time."""

    def __init__(self, kind: str, rng: random.Random, pictures: list[tuple[str, Path]],
                 lines: list[str]) -> None:
        self.kind, self.rng, self.lines = kind, rng, lines
        self.np = np.random.default_rng(rng.randrange(1 << 30))
        self.used: list[tuple[str, Path]] = []
        self.duration_s = rng.uniform(8.0, 20.0)
        needs = {"slideshow": rng.randint(3, 6), "fade": 2, "dark": 1, "game": 1}.get(kind, 0)
        self.pics = []
        for _ in range(needs):
            if pictures:
                src = rng.choice(pictures)
                self.used.append(src)
                self.pics.append(load_picture(src[1]))
        self.colours = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(3)]
        self.text = [rng.choice(lines) for _ in range(40)]
        self.field = soft_noise(self.np, (SIZE[0] * 2, SIZE[1] * 2), 48)
        self.pan = (rng.random(), rng.random(), rng.random(), rng.random())

    def frame(self, t: float) -> Image.Image:
        return getattr(self, "_" + self.kind)(t, t / self.duration_s)

    def _slideshow(self, t, u):
        per = self.duration_s / len(self.pics)
        i = min(int(t / per), len(self.pics) - 1)
        local = (t - i * per) / per
        im = cover(self.pics[i], zoom=1.0 + 0.15 * local, pan=(0.5, 0.5))
        if i + 1 < len(self.pics) and local > 0.85:  # crossfade into the next picture
            nxt = cover(self.pics[i + 1])
            im = Image.blend(im, nxt, (local - 0.85) / 0.15)
        return im

    def _title(self, t, u):
        im = Image.new("RGB", SIZE, self.colours[0])
        d = ImageDraw.Draw(im)
        n = 1 + int(u * 2.999)  # the card's text changes twice
        d.text((30, 90), self.text[n][:28], fill=self.colours[1], font=font(26))
        d.text((30, 150), self.text[n + 3][:40], fill=self.colours[2], font=font(16))
        return im

    def _fade(self, t, u):
        im = cover(self.pics[0] if u < 0.5 else self.pics[-1])
        level = min(1.0, abs(u - 0.5) * 4) if u > 0.25 else 1 - u * 4
        return Image.eval(im, lambda v: int(v * max(0.0, min(1.0, level))))

    def _flat(self, t, u):
        a, b = np.array(self.colours[0], np.float32), np.array(self.colours[1], np.float32)
        if self.pan[0] < 0.4:  # one colour drifting
            c = a + (b - a) * u
            return Image.new("RGB", SIZE, tuple(int(v) for v in c))
        y = np.linspace(0, 1, SIZE[1], dtype=np.float32)[:, None, None]
        arr = a * (1 - y) + b * y + 20 * np.sin(2 * np.pi * (u + self.pan[1]))
        return Image.fromarray(np.clip(np.broadcast_to(arr, (SIZE[1], SIZE[0], 3)), 0, 255)
                               .astype(np.uint8))

    def _lowdetail(self, t, u):
        what = int(self.pan[0] * 3)  # sky, water, snow
        shift = int(t * 12)
        f = self.field[shift % SIZE[1]:shift % SIZE[1] + SIZE[1], shift:shift + SIZE[0]]
        y = np.linspace(0, 1, SIZE[1], dtype=np.float32)[:, None]
        if what == 0:
            top, bottom = np.array([110, 160, 230]), np.array([225, 215, 235])
            base = top * (1 - y[..., None]) + bottom * y[..., None]
            arr = base + 60 * np.clip(f - 0.5, 0, 1)[..., None]
        elif what == 1:
            ripple = np.sin(2 * np.pi * (y * 18 + f * 2 + t * 0.5))
            arr = np.array([30, 90, 120]) + 25 * ripple[..., None] + 20 * f[..., None]
        else:
            arr = 225 + 25 * (f[..., None] - 0.5) + 4 * self.np.standard_normal((SIZE[1], SIZE[0], 1))
            arr = np.repeat(arr, 3, axis=2) * np.array([0.97, 0.99, 1.0])
        return Image.fromarray(np.clip(np.broadcast_to(arr, (SIZE[1], SIZE[0], 3)), 0, 255)
                               .astype(np.uint8))

    def _dark(self, t, u):
        im = cover(self.pics[0], zoom=1.3, pan=(self.pan[0] + 0.2 * u, self.pan[1]))
        arr = np.asarray(im, np.float32) * (0.06 + 0.08 * self.pan[2])
        arr += self.np.normal(0, 2.0, arr.shape)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))

    def _screen(self, t, u):
        dark = self.pan[0] < 0.5
        bg, fg = ((12, 12, 12), (200, 220, 200)) if dark else ((250, 250, 250), (30, 30, 40))
        im = Image.new("RGB", SIZE, bg)
        d = ImageDraw.Draw(im)
        d.rectangle([0, 0, SIZE[0], 18], fill=(60, 60, 70) if dark else (220, 220, 225))
        scroll = int(t * 1.5)
        for row in range(14):
            d.text((8, 24 + row * 17), self.text[(scroll + row) % len(self.text)][:56], fill=fg,
                   font=font(12))
        if int(t * 2) % 2:
            d.rectangle([8, 24 + 13 * 17, 16, 38 + 13 * 17], fill=fg)
        return im

    def _game(self, t, u):
        return cover(self.pics[0], zoom=1.6, pan=(self.pan[0] * 0.3 + 0.7 * u, self.pan[1]))


def write_video(frames, duration_s: float, path: Path, crf: int) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(FPS))
        s.width, s.height, s.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        s.options = {"crf": str(crf), "preset": "veryfast"}
        for i in range(int(duration_s * FPS)):
            for pkt in s.encode(av.VideoFrame.from_image(frames(i / FPS))):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def reference_video(rng: random.Random, pictures, lines):
    """A registered 'animation': detailed pans with a low-detail stretch (pastel sky, a dark
    scene, a gradient or a title card) of 3-6 s somewhere inside."""
    game = Renderer("game", rng, pictures, lines)
    dull = Renderer(rng.choice(["lowdetail", "dark", "flat", "title"]), rng, pictures, lines)
    if dull.kind == "lowdetail":
        dull.pan = (0.0, *dull.pan[1:])  # the failure of issue 19: a flat pastel sky
    total = rng.uniform(20.0, 30.0)
    a = rng.uniform(4.0, total - 10.0)
    b = a + rng.uniform(3.0, 6.0)

    def frames(t):
        return dull.frame(t - a) if a <= t < b else game.frame(t)
    return frames, game.used + dull.used, total, dull.kind


def build_video(roots: dict[str, Path], out: Path, per_kind: int, n_refs: int) -> list[dict]:
    pics = image_sources(roots)
    log.info("pictures per split: %s", {k: len(v) for k, v in pics.items()})
    lines = text_lines(roots)
    items = []
    for split in ("calibration", "heldout"):
        for kind in VIDEO_KINDS:
            folder = out / "video" / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_kind):
                rng = random.Random(seed_of("video", split, kind, i))
                r = Renderer(kind, rng, pics[split], lines)
                path = folder / f"{kind}{i:02d}.mp4"
                write_video(r.frame, r.duration_s, path, rng.choice([23, 23, 30, 38]))
                items.append({"path": str(path.relative_to(out)), "signal": "visual",
                              "kind": kind, "split": split, "duration_s": r.duration_s,
                              "sources": sorted({f"{p}:{f.relative_to(roots[p])}"
                                                 for p, f in r.used})})
            log.info("video %s %s: %d", split, kind, per_kind)
    folder = out / "video" / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_refs):
        rng = random.Random(seed_of("reference", i))
        frames, used, total, dull = reference_video(rng, pics["reference"], lines)
        path = folder / f"ref{i:02d}.mp4"
        write_video(frames, total, path, 23)
        items.append({"path": str(path.relative_to(out)), "signal": "visual",
                      "kind": f"reference-{dull}", "split": "reference", "duration_s": total,
                      "sources": sorted({f"{p}:{f.relative_to(roots[p])}" for p, f in used})})
    return items


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=Path, default=ROOT / ".stage" / "negatives")
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "negatives")
    ap.add_argument("--audio-per-kind", type=int, default=80, help="clips per kind and split")
    ap.add_argument("--video-per-kind", type=int, default=8, help="videos per kind and split")
    ap.add_argument("--references", type=int, default=8, help="low-detail reference videos")
    ap.add_argument("--only", choices=("audio", "video"), default=None)
    a = ap.parse_args()
    roots = st.stage_packages(PACKAGES, a.stage)
    a.out.mkdir(parents=True, exist_ok=True)
    man_path = a.out / "manifest.json"
    old = json.loads(man_path.read_text())["items"] if man_path.exists() else []
    items = [it for it in old if a.only and it["signal"] != ("audio" if a.only == "audio"
                                                             else "visual")]
    if a.only != "video":
        items += build_audio(roots, a.out, a.audio_per_kind)
    if a.only != "audio":
        items += build_video(roots, a.out, a.video_per_kind, a.references)
    licences = {p: st.read_licence(roots[p], p) for p in PACKAGES}
    man_path.write_text(json.dumps({
        "recipe": "scripts/stage_negatives.py", "sample_rate": SR, "video_size": SIZE,
        "video_fps": FPS, "packages": licences, "items": items}, indent=1))
    counts: dict[str, int] = {}
    for it in items:
        key = f"{it['signal']}/{it['split']}/{it['kind']}"
        counts[key] = counts.get(key, 0) + 1
    for k in sorted(counts):
        log.info("%-36s %d", k, counts[k])


if __name__ == "__main__":
    main()
