"""The hostile-input corpus of ``bench/hostile.py``: real media from tests/data (the photos, the
two ogg songs, a short video made from the photos) cut, flipped, mislabeled and emptied, plus
synthetic headers that lie (decompression bombs, absurd MP4 sample tables, WAV headers claiming
terabytes), special files (FIFOs, a socket, devices, symbolic link loops, unreadable files),
non-media files and names a terminal cannot show.

Each file is a ``Case`` with what each command must do with it:
``error``  one line on stderr naming the file and the cause;
``skip``   nothing at all inside a folder (not media), an error when named explicitly;
``ok``     registered / answered (one line on stdout);
``any``    one line, either (mutated media may still decode).
"""
from __future__ import annotations

import io
import os
import socket
import stat
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
CUTS = (12, 64, 0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
FLIPS = (1, 8, 64)


@dataclass
class Case:
    path: Path
    kind: str
    add: str  # error | skip | ok | any
    query: str
    explicit: bool = True  # may be named on the command line (per-file runs)
    prefix: bool = False  # the error line names a folder above ``path`` (paths past PATH_MAX)
    sockets: list = field(default_factory=list)  # keep a bound socket file alive


class Corpus:
    def __init__(self, root: Path, n_shards: int) -> None:
        self.root = root
        self.shards = [root / f"shard-{i:02d}" for i in range(n_shards)]
        for s in self.shards:
            s.mkdir(parents=True, exist_ok=True)
        self.cases: list[Case] = []
        self._next = 0

    def folder(self) -> Path:
        self._next += 1
        return self.shards[self._next % len(self.shards)]

    def write(self, name: str, data: bytes, kind: str, add: str, query: str | None = None) -> Case:
        path = self.folder() / name
        path.write_bytes(data)
        return self.note(path, kind, add, query)

    def note(self, path: Path, kind: str, add: str, query: str | None = None, **kw) -> Case:
        case = Case(path, kind, add, query or add, **kw)
        self.cases.append(case)
        return case


# -- real sources ---------------------------------------------------------------------------
def image_sources(n_photos: int) -> dict[str, bytes]:
    out = {}
    photos = sorted(DATA.glob("*.jpg"))[:n_photos]
    for p in photos:
        im = Image.open(p).convert("RGB")
        im.thumbnail((160, 160))
        for fmt, ext, mode in (("JPEG", "jpg", "RGB"), ("PNG", "png", "RGBA"), ("WEBP", "webp", "RGB"),
                               ("GIF", "gif", "P"), ("BMP", "bmp", "RGB"), ("TIFF", "tif", "RGB")):
            buf = io.BytesIO()
            im.convert(mode).save(buf, fmt)
            out[f"{p.stem}.{ext}"] = buf.getvalue()
    return out


def _encode_audio(samples: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as c:
        st = c.add_stream(codec, rate=rate)
        st.layout = "mono"
        fmt = next(f.name for f in st.codec_context.codec.audio_formats
                   if f.name in ("fltp", "flt", "s16", "s16p"))
        block = 1152
        for i in range(0, samples.size, block):
            x = samples[i : i + block]
            arr = (x * 32767).astype(np.int16) if fmt.startswith("s16") else x.astype(np.float32)
            fr = av.AudioFrame.from_ndarray(arr[None], format=fmt, layout="mono")
            fr.sample_rate, fr.pts = rate, i
            for pkt in st.encode(fr):
                c.mux(pkt)
        for pkt in st.encode(None):
            c.mux(pkt)
    return buf.getvalue()


def audio_sources() -> dict[str, bytes]:
    import av

    out = {p.name: p.read_bytes() for p in sorted(DATA.glob("*.ogg"))}
    with av.open(str(DATA / "music_beast.ogg")) as c:
        rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
        parts = [f.to_ndarray().reshape(-1) for fr in c.decode(audio=0) for f in rs.resample(fr)]
    x = np.concatenate(parts)[: 16000 * 6]
    for name, container, codec in (("beast.wav", "wav", "pcm_s16le"), ("beast.flac", "flac", "flac"),
                                   ("beast.mp3", "mp3", "libmp3lame"), ("beast.m4a", "ipod", "aac"),
                                   ("beast.opus", "ogg", "libopus")):
        rate = 48000 if codec == "libopus" else 16000
        y = np.interp(np.arange(0, x.size, 16000 / rate), np.arange(x.size), x) if rate != 16000 else x
        out[name] = _encode_audio(y.astype(np.float32), rate, container, codec)
    return out


def pan_frames(n: int, size=(96, 64), seed: int = 0) -> list[Image.Image]:
    im = Image.open(DATA / "building_temple.jpg").convert("RGB")
    rng = np.random.default_rng(seed)
    w, h = im.size
    frames = []
    for i in range(n):
        x, y = int((w - w // 2) * (0.5 + 0.5 * np.sin(i / 7))), int(rng.integers(0, h // 2))
        frames.append(im.crop((x, y, x + w // 2, y + h // 2)).resize(size))
    return frames


def write_video(path: Path | io.BytesIO, frames: list[Image.Image], fps: int, container: str,
                codec: str, audio: np.ndarray | None = None) -> None:
    """A video from ``frames`` (and a mono 16 kHz soundtrack when ``audio`` is given)."""
    import av

    with av.open(path, "w", format=container) as c:
        v = c.add_stream(codec, rate=Fraction(fps))
        v.width, v.height, v.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        if codec == "libx264":
            v.options = {"preset": "ultrafast"}
        a = None
        if audio is not None:
            a = c.add_stream("aac", rate=16000)
            a.layout = "mono"
        for im in frames:
            for pkt in v.encode(av.VideoFrame.from_image(im)):
                c.mux(pkt)
        for pkt in v.encode():
            c.mux(pkt)
        if a is not None:
            for i in range(0, audio.size, 1024):
                fr = av.AudioFrame.from_ndarray(audio[None, i : i + 1024].astype(np.float32),
                                                format="fltp", layout="mono")
                fr.sample_rate, fr.pts = 16000, i
                for pkt in a.encode(fr):
                    c.mux(pkt)
            for pkt in a.encode(None):
                c.mux(pkt)


def video_sources() -> dict[str, bytes]:
    frames = pan_frames(50)
    noise = np.random.default_rng(1).normal(0, 0.2, 16000 * 2).astype(np.float32)
    out = {}
    for name, container, codec, audio in (("clip.mp4", "mp4", "libx264", noise),
                                          ("clip.mkv", "matroska", "libx264", None),
                                          ("clip.webm", "webm", "libvpx", None),
                                          ("clip.avi", "avi", "mpeg4", None),
                                          ("clip.ts", "mpegts", "mpeg2video", None),
                                          ("clip.mov", "mov", "libx264", noise)):
        buf = io.BytesIO()
        write_video(buf, frames, 25, container, codec, audio)
        out[name] = buf.getvalue()
    return out


def mutations(corpus: Corpus, sources: dict[str, bytes], family: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for name, data in sources.items():
        stem, ext = name.rsplit(".", 1)
        corpus.write(name, data, f"{family}-valid", "ok")
        for cut in CUTS:
            n = cut if isinstance(cut, int) else max(1, int(len(data) * cut))
            # An MPEG-TS is known by its second sync byte at 188: shorter, it is not media.
            expect = "skip" if ext == "ts" and n <= 188 else "any"
            corpus.write(f"{stem}-cut{n}.{ext}", data[:n], f"{family}-truncated", expect)
        for k in FLIPS:
            b = np.frombuffer(data, np.uint8).copy()
            b[rng.integers(16, len(b), k)] ^= rng.integers(1, 256, k, dtype=np.uint8)
            corpus.write(f"{stem}-flip{k}.{ext}", b.tobytes(), f"{family}-bitflip", "any")


# -- synthetic headers ----------------------------------------------------------------------
def _png_chunk(t: bytes, d: bytes) -> bytes:
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(w: int, h: int, depth: int = 8, ctype: int = 2, idat: bytes | None = None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", idat if idat is not None else zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def png_zlib_bomb(side: int) -> bytes:
    """A real greyscale PNG ``side``x``side`` of zeros: kilobytes on disk, side² bytes decoded."""
    comp = zlib.compressobj(9)
    row = b"\0" * (side + 1)
    body = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    return png(side, side, 8, 0, body)


def gif(screen: tuple[int, int], frame: tuple[int, int], n_frames: int = 1) -> bytes:
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    img = (b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame, 0) + b"\x02\x02\x44\x01\x00")
    return head + img * n_frames + b"\x3b"


def webp_vp8x(w: int, h: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (w - 1).to_bytes(3, "little") \
        + (h - 1).to_bytes(3, "little")
    vp8l = b"VP8L" + struct.pack("<I", 5) + b"\x2f" + struct.pack("<I", ((h - 1) & 0x3FFF) << 14
                                                                    | ((w - 1) & 0x3FFF)) + b"\0"
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tiff(entries: list[tuple[int, int, int, int]], next_ifd: int = 0, claimed: int | None = None,
         tail: bytes = b"\0" * 64) -> bytes:
    """Little-endian TIFF with one IFD at offset 8: (tag, type, count, value) entries."""
    n = len(entries) if claimed is None else claimed
    ifd = struct.pack("<H", n) + b"".join(struct.pack("<HHII", *e) for e in entries)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", next_ifd) + tail


def tiff_image(w: int, h: int, bps: int = 8, spp: int = 3, strip_bytes: int = 64) -> bytes:
    return tiff([(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, bps), (259, 3, 1, 1),
                 (262, 3, 1, 2), (273, 4, 1, 8), (277, 3, 1, spp), (278, 4, 1, h),
                 (279, 4, 1, strip_bytes)])


def bmp(w: int, h: int, bpp: int = 24) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, bpp, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + info + b"\0" * 64


def jpeg_sof(w: int, h: int, components: int = 3) -> bytes:
    sof = struct.pack(">BHHB", 8, h, w, components) + b"\x01\x11\x00" * components
    return (b"\xff\xd8\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\1\1\0\0\1\0\1\0\0"
            + b"\xff\xc0" + struct.pack(">H", 2 + len(sof)) + sof + b"\xff\xd9")


def box(kind: bytes, body: bytes = b"", size: int | None = None) -> bytes:
    return struct.pack(">I", 8 + len(body) if size is None else size) + kind + body


def full(kind: bytes, body: bytes, version: int = 0) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + body)


def mp4(stsz_count: int = 10, stco_count: int = 1, stts_count: int = 1, timescale: int = 1000,
        duration: int = 1000, width: int = 96, height: int = 64, mdat: bytes | None = None,
        stsc_first: int = 1) -> bytes:
    """An MP4 whose sample tables claim what they are told to (absurd counts, tiny bodies)."""
    ftyp = box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41")
    mvhd = full(b"mvhd", struct.pack(">IIII", 0, 0, timescale, duration) + b"\0\1\0\0\1\0" + b"\0" * 70
                + struct.pack(">I", 2))
    tkhd = full(b"tkhd", b"\0" * 8 + struct.pack(">II", 1, 0) + struct.pack(">I", duration)
                + b"\0" * 52 + struct.pack(">II", width << 16, height << 16))
    mdhd = full(b"mdhd", struct.pack(">IIII", 0, 0, timescale, duration) + b"\x55\xc4\0\0")
    hdlr = full(b"hdlr", b"\0\0\0\0vide" + b"\0" * 12 + b"v\0")
    avc1 = box(b"avc1", b"\0" * 6 + b"\0\1" + b"\0" * 16 + struct.pack(">HH", width, height)
               + b"\0\x48\0\0\0\x48\0\0\0\0\0\0\0\1" + b"\0" * 32 + b"\0\x18\xff\xff"
               + box(b"avcC", b"\1\x42\xc0\x1e\xff\xe1\0\x0a\x67\x42\xc0\x1e\xd9\0\xa0\x47\xfe\x88"
                     + b"\1\0\4\x68\xce\x3c\x80"))
    stsd = full(b"stsd", struct.pack(">I", 1) + avc1)
    stts = full(b"stts", struct.pack(">III", stts_count, 10, 100))
    stsc = full(b"stsc", struct.pack(">IIII", 1, stsc_first, 10, 1))
    stsz = full(b"stsz", struct.pack(">II", 0, stsz_count) + struct.pack(">I", 16) * 10)
    stco = full(b"stco", struct.pack(">I", stco_count) + struct.pack(">I", 48))
    stbl = box(b"stbl", stsd + stts + stsc + stsz + stco)
    minf = box(b"minf", full(b"vmhd", b"\0" * 8) + box(b"dinf", full(b"dref", b"\0\0\0\1"
               + full(b"url ", b""))) + stbl)
    moov = box(b"moov", mvhd + box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf)))
    return ftyp + box(b"mdat", b"\0" * 160 if mdat is None else mdat) + moov


def wav(riff_size: int | None = None, data_size: int | None = None, channels: int = 1,
        rate: int = 16000, bits: int = 16, tag: int = 1, n_samples: int = 16000,
        fmt_size: int = 16, rf64_size: int | None = None) -> bytes:
    rng = np.random.default_rng(7)
    pcm = (rng.normal(0, 3000, n_samples)).astype("<i2").tobytes()
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * block) & 0xFFFFFFFF, block & 0xFFFF,
                      bits)
    fmt_chunk = b"fmt " + struct.pack("<I", fmt_size) + fmt
    data_chunk = b"data" + struct.pack("<I", len(pcm) if data_size is None else data_size) + pcm
    if rf64_size is not None:  # RF64: sizes in a ds64 chunk (this one claims terabytes)
        ds64 = b"ds64" + struct.pack("<IQQQI", 28, rf64_size + 36, rf64_size, rf64_size // 2, 0)
        return b"RF64" + b"\xff\xff\xff\xff" + b"WAVE" + ds64 + fmt_chunk + b"data\xff\xff\xff\xff" + pcm
    body = b"WAVE" + fmt_chunk + data_chunk
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def flac(rate: int = 16000, total: int = 16000, min_block: int = 4096, length: int = 34) -> bytes:
    info = struct.pack(">HH", min_block, min_block) + b"\0\0\0\0\0\0"
    packed = (rate << 44) | (0 << 41) | (15 << 36) | (total & (2**36 - 1))
    info += packed.to_bytes(8, "big") + b"\0" * 16
    return b"fLaC" + bytes([0x80]) + length.to_bytes(3, "big") + info + b"\xff\xf8" + b"\0" * 64


def synthetic(corpus: Corpus, rng: np.random.Generator) -> None:
    w = corpus.write
    for wd, ht in ((0, 0), (0, 10), (30001, 1), (1, 30001), (10001, 10000), (20000, 20000),
                   (50000, 50000), (65535, 65535), (2**31 - 1, 2**31 - 1), (2**32 - 1, 1)):
        w(f"png-{wd}x{ht}.png", png(wd, ht), "png-header-bomb", "error")
    w("png-bad-depth.png", png(10, 10, 3, 2), "png-header", "error")
    w("png-chunk-2GB.png", b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 0x7FFFFFFF) + b"IHDR" + b"\0" * 64,
      "png-header", "error")
    w("png-zlib-bomb-144MP.png", png_zlib_bomb(12000), "png-zlib-bomb", "error")
    w("png-many-idat.png", png(16, 16, 8, 0, b"")[:-12] + b"".join(
        _png_chunk(b"IDAT", b"") for _ in range(20000)) + _png_chunk(b"IEND", b""), "png-header", "any")
    for screen, frame in (((65535, 65535), (1, 1)), ((1, 1), (65535, 65535)), ((40000, 40000), (40000, 40000)),
                          ((0, 0), (0, 0))):
        w(f"gif-{screen[0]}-{frame[0]}.gif", gif(screen, frame), "gif-header-bomb", "any")
    w("gif-20000-frames.gif", gif((2, 2), (1, 1), 20000), "gif-many-frames", "any")
    w("gif-header-only.gif", gif((10, 10), (10, 10))[:13], "gif-header", "error")
    for side in (16384, 2**24):
        w(f"webp-{side}.webp", webp_vp8x(side, side), "webp-header-bomb", "error")
    w("webp-riff-4GB.webp", b"RIFF\xff\xff\xff\xffWEBPVP8 " + b"\xff" * 40, "webp-header", "error")
    for wd, ht in ((100000, 100000), (65535, 65535), (30001, 1), (2**32 - 1, 2**32 - 1)):
        w(f"tiff-{wd}x{ht}.tif", tiff_image(wd, ht), "tiff-header-bomb", "error")
    w("tiff-ifd-loop.tif", tiff([(256, 4, 1, 8), (257, 4, 1, 8)], next_ifd=8), "tiff-ifd-loop", "any")
    w("tiff-65535-entries.tif", tiff([(256, 4, 1, 8)], claimed=65535), "tiff-header", "any")
    w("tiff-strip-4GB.tif", tiff_image(64, 64, strip_bytes=0xFFFFFFFF), "tiff-header", "any")
    w("tiff-bps-64000.tif", tiff_image(64, 64, bps=64000), "tiff-header", "any")
    w("tiff-spp-65535.tif", tiff_image(64, 64, spp=65535), "tiff-header", "any")
    for wd, ht, bpp in ((1000000, 1000000, 24), (-64, 64, 24), (64, -(2**31), 24), (64, 64, 0),
                        (40000, 40000, 1)):
        w(f"bmp-{wd}x{ht}-{bpp}.bmp", bmp(wd, ht, bpp), "bmp-header", "any")
    for wd, ht, comp in ((65500, 65500, 3), (0, 0, 3), (64, 64, 0), (64, 64, 255)):
        w(f"jpeg-{wd}x{ht}-{comp}.jpg", jpeg_sof(wd, ht, comp), "jpeg-header", "any")
    for kw in ({"stsz_count": 0xFFFFFFFF}, {"stco_count": 0xFFFFFFFF}, {"stts_count": 0xFFFFFFFF},
               {"stsz_count": 0xFFFFFFFF, "stco_count": 0xFFFFFFFF, "stts_count": 0xFFFFFFFF},
               {"timescale": 0}, {"duration": 0xFFFFFFFF, "timescale": 1},
               {"width": 65535, "height": 65535}, {"width": 0, "height": 0},
               {"stsc_first": 0xFFFFFFFF}, {"mdat": b""}):
        name = "-".join(f"{k}{v}" for k, v in kw.items())
        w(f"mp4-{name}.mp4", mp4(**kw), "mp4-sample-table", "any")
    ftyp = box(b"ftyp", b"isom\0\0\2\0isom")
    w("mp4-box-size-0.mp4", ftyp + box(b"moov", b"\0" * 32, size=0), "mp4-boxes", "any")
    w("mp4-box-size-4GB.mp4", ftyp + box(b"moov", b"\0" * 32, size=0xFFFFFFFF), "mp4-boxes", "any")
    w("mp4-largesize-2e64.mp4", ftyp + struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", 2**64 - 1),
      "mp4-boxes", "any")
    nested = b"\0" * 8
    for _ in range(2000):
        nested = box(b"moov", nested)
    w("mp4-nested-2000.mp4", ftyp + nested, "mp4-boxes", "any")
    for name, kw in (("riff-4GB", {"riff_size": 0xFFFFFFFF}), ("data-4GB", {"data_size": 0xFFFFFFFF}),
                     ("rf64-1TB", {"rf64_size": 2**40}), ("rf64-16EB", {"rf64_size": 2**63}),
                     ("channels-0", {"channels": 0}), ("channels-65535", {"channels": 65535}),
                     ("rate-0", {"rate": 0}), ("rate-4G", {"rate": 0xFFFFFFFF}), ("bits-0", {"bits": 0}),
                     ("bits-65535", {"bits": 65535}), ("tag-ffff", {"tag": 0xFFFF}),
                     ("fmt-4GB", {"fmt_size": 0xFFFFFFF0}), ("no-samples", {"n_samples": 0})):
        w(f"wav-{name}.wav", wav(**kw), "wav-header", "any")
    for name, kw in (("rate-0", {"rate": 0}), ("total-2e36", {"total": 2**36 - 1}),
                     ("block-0", {"min_block": 0}), ("meta-16MB", {"length": 2**24 - 1})):
        w(f"flac-{name}.flac", flac(**kw), "flac-header", "any")
    magic = {"ogg": b"OggS\0\2" + b"\0" * 20, "mp3": b"ID3\4\0\0\x7f\x7f\x7f\x7f",
             "mkv": b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff",
             "avi": b"RIFF\xff\xff\xff\xffAVI LIST", "ts": b"\x47" + b"\0" * 187 + b"\x47",
             "mpg": b"\x00\x00\x01\xba", "asf": b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",
             "flv": b"FLV\1\5\0\0\0\x09", "jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n",
             "gif": b"GIF89a", "bmp": b"BM", "tif": b"II*\0", "webp": b"RIFF\0\0\0\0WEBP",
             "wav": b"RIFF\0\0\0\0WAVE", "flac": b"fLaC", "mp4": b"\0\0\0\x18ftypisom"}
    for ext, m in magic.items():
        w(f"magic-only.{ext}", m, "magic-only", "any")
        w(f"magic-garbage.{ext}", m + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
          "magic-garbage", "any")


# -- not media, mislabeled, empty -----------------------------------------------------------
def not_media(corpus: Corpus, rng: np.random.Generator, photo: bytes, song: bytes) -> None:
    w = corpus.write
    texts = {"README.md": "# Campaign\nThese are the photos.\n", "notes.txt": "see you at 10\n",
             "data.json": '{"a": [1, 2, 3]}\n', "page.html": "<html><body>hi</body></html>\n",
             "script.sh": "#!/bin/sh\necho hi\n", "photo.jpg.txt": "not a photo\n",
             "text-named.jpg": "this is text, named like a photo\n", "text-named.mp4": "text\n"}
    for name, text in texts.items():
        w(name, text.encode(), "text", "skip")
    for i in range(6):
        w(f"random-{i}.bin", rng.integers(0, 256, 2048, dtype=np.uint8).tobytes(), "unrecognised", "skip")
    w("document.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(rng.integers(0, 256, 512, dtype=np.uint8)),
      "unrecognised", "skip")
    w("archive.zip", b"PK\3\4" + bytes(rng.integers(0, 256, 512, dtype=np.uint8)), "unrecognised", "skip")
    for ext in ("jpg", "png", "gif", "webp", "tif", "bmp", "mp4", "mkv", "wav", "ogg", "mp3", "flac",
                "txt", "md", "noext"):
        w(f"empty.{ext}", b"", "zero-length", "error")
    for ext in ("mp4", "wav", "png", "txt", "ogg"):
        w(f"photo-named.{ext}", photo, "mislabeled", "ok")
    for ext in ("jpg", "mp4", "png"):
        w(f"song-named.{ext}", song, "mislabeled", "ok")


# -- special files and odd names ------------------------------------------------------------
def special(corpus: Corpus, photo: bytes, root_user: bool) -> None:
    for name in ("pipe.jpg", "pipe.mp4", "pipe.wav"):
        path = corpus.folder() / name
        os.mkfifo(path)
        corpus.note(path, "fifo", "skip")
    path = corpus.folder() / "socket.png"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    corpus.note(path, "socket", "skip", sockets=[s])
    for target in ("/dev/zero", "/dev/urandom", "/dev/null"):
        path = corpus.folder() / f"link-to-{Path(target).name}.wav"
        os.symlink(target, path)
        corpus.note(path, "device-link", "skip")
    if root_user:
        for name, dev in (("zero-device.jpg", os.makedev(1, 5)), ("tty-device.mp4", os.makedev(5, 0))):
            path = corpus.folder() / name
            try:
                os.mknod(path, 0o644 | stat.S_IFCHR, dev)
            except OSError:
                continue
            corpus.note(path, "char-device", "skip")
    f = corpus.folder()
    os.symlink("loop-b.jpg", f / "loop-a.jpg")
    os.symlink("loop-a.jpg", f / "loop-b.jpg")
    os.symlink("self.jpg", f / "self.jpg")
    os.symlink("missing.jpg", f / "dangling.jpg")
    for name in ("loop-a.jpg", "loop-b.jpg", "self.jpg", "dangling.jpg"):
        corpus.note(f / name, "symlink-loop" if name != "dangling.jpg" else "symlink-dangling", "error")
    (f / "photo-link-target.jpg").write_bytes(photo)
    corpus.note(f / "photo-link-target.jpg", "mislabeled", "ok")
    os.symlink("photo-link-target.jpg", f / "photo-link.png")
    corpus.note(f / "photo-link.png", "symlink-to-file", "ok")
    loopdir = corpus.folder() / "dir-loop"
    loopdir.mkdir()
    os.symlink("..", loopdir / "up")  # a folder link: never followed, so never a loop
    corpus.note(loopdir / "up", "symlink-dir-loop", "skip", explicit=False)
    (corpus.folder() / "folder-named.jpg").mkdir()
    locked = corpus.folder() / "unreadable.jpg"
    locked.write_bytes(photo + b"locked")
    locked.chmod(0)
    corpus.note(locked, "unreadable", "ok" if root_user else "error")
    f = corpus.folder()
    for name in ("new\nline.jpg", "tab\tand\x1bescape.jpg", "-dash.jpg", "spaces  and ünïcode.jpg"):
        (f / name).write_bytes(photo + name.encode())
        corpus.note(f / name, "odd-name", "ok")
    bad = os.path.join(os.fsencode(f), b"latin1-\xe9\xff.jpg")
    with open(bad, "wb") as fh:
        fh.write(photo + b"\xe9\xff")
    corpus.note(Path(os.fsdecode(bad)), "non-utf8-name", "error", "ok")


def deep(corpus: Corpus, photo: bytes) -> None:
    d = corpus.folder() / "deep"
    for i in range(100):
        d = d / f"d{i}"
    d.mkdir(parents=True)
    (d / "bottom.jpg").write_bytes(photo + b"bottom")
    corpus.note(d / "bottom.jpg", "deeply-nested", "ok")
    # Past PATH_MAX: only relative mkdir works; walking it fails with "File name too long".
    top = corpus.folder() / "too-deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    path = str(top)
    try:
        for _ in range(20):
            name = "n" * 250
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            path = os.path.join(path, name)
        leaf = os.open("leaf.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, photo + b"leaf")
        os.close(leaf)
    finally:
        os.close(fd)
    corpus.note(Path(path) / "leaf.jpg", "past-path-max", "error", explicit=False, prefix=True)


def big(corpus: Corpus) -> None:
    """Sparse files: gigabytes on paper, nothing on disk."""
    path = corpus.folder() / "sparse-1GB.png"
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(1 << 30)
    corpus.note(path, "oversized-sparse", "error")
    path = corpus.folder() / "sparse-silence-100MB.wav"
    with open(path, "wb") as f:
        f.write(wav(data_size=100 << 20, n_samples=0))
        f.truncate(44 + (100 << 20))
    corpus.note(path, "oversized-silent-wav", "error")


def build(root: Path, ci: bool, n_shards: int) -> Corpus:
    """The whole corpus under ``root`` (``ci``: two photos and the songs only, no big files)."""
    corpus = Corpus(root, n_shards)
    rng = np.random.default_rng(24)
    images = image_sources(2 if ci else 12)
    audio = audio_sources()
    mutations(corpus, images, "image", seed=1)
    mutations(corpus, audio if not ci else {k: audio[k] for k in ("music_beast.ogg", "beast.wav")},
              "audio", seed=2)
    videos = video_sources()
    mutations(corpus, videos if not ci else {"clip.mp4": videos["clip.mp4"]}, "video", seed=3)
    synthetic(corpus, rng)
    photo = (DATA / "face_astronaut.jpg").read_bytes()
    not_media(corpus, rng, photo, (DATA / "music_brainsukker.ogg").read_bytes())
    special(corpus, photo, os.geteuid() == 0)
    deep(corpus, photo)
    if not ci:
        big(corpus)
    return corpus
