"""Evidence for people: an HTML page with each query beside the works it matched.

Self-contained (pictures and sound clips inline), so it can be mailed, archived, or shown in a
sandboxed frame. Per match, by what matched:

- images: the query and the registered picture side by side;
- video: keyframes of query and reference side by side at the start, middle and end of each
  matched segment, and a timeline bar of each file with the matched segments marked;
- audio (music, soundtracks): a waveform strip of each file with the matched spans marked and
  players that start at the matched second (clips of the matched spans, up to ``CLIP_MAX_S``).

Captions give the calibrated score (the one 0.5 threshold); the raw similarity is a detail line.
A header names the library, the date, the copytrace version, the descriptor models and their
thresholds.
"""
from __future__ import annotations

import base64
import html
import io
import time
import wave
from pathlib import Path

import numpy as np

from copytrace.types import QueryResult

THUMB_SIDE = 320
CLIP_MAX_S = 30.0
ENVELOPE_BINS = 300
AUDIO_RATE = 8000
MAX_SEGMENTS_SHOWN = 3
DECISION_SCORE = 0.5

_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}"
    "header{border-bottom:2px solid #444;margin-bottom:1em}header dl{display:grid;"
    "grid-template-columns:max-content 1fr;gap:.1em 1em;font-size:.9em}header dt{color:#555}"
    "section{border-top:1px solid #ccc;padding:1em 0}.row{display:flex;gap:1.5em;flex-wrap:wrap}"
    "figure{margin:0}img{max-width:320px;max-height:320px;display:block}"
    "figcaption{font-size:.85em;max-width:320px;word-break:break-all}.none{color:#777}"
    ".match{color:#a00;font-weight:bold}.noimg{width:160px;height:90px;background:#eee;"
    "display:flex;align-items:center;justify-content:center;color:#777;font-size:.8em}"
    ".detail{color:#666;font-size:.85em}.pair{display:flex;gap:.5em;margin:.3em 0}"
    ".pair img{max-width:240px;max-height:180px}.bar{position:relative;height:14px;"
    "background:#ddd;margin:.2em 0 .6em;width:100%;max-width:700px}.bar .span{position:absolute;"
    "top:0;bottom:0;background:#c33}.lane{font-size:.8em;color:#444}"
    ".textpassage{white-space:pre-wrap;max-width:560px;max-height:24em;overflow:auto;"
    "font-size:.9em;border:1px solid #ccc;padding:.4em}.textpassage mark{background:#fd6}"
    "svg.wave{width:100%;max-width:700px;height:48px;display:block;background:#f4f4f4}"
    ".match-block{border-left:4px solid #c33;padding-left:1em;margin:1em 0}"
)


def _jpeg_uri(im) -> str:
    im = im.convert("RGB")
    im.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _thumb_uri(path: str) -> str | None:
    """A small inline JPEG of an image file (None when the file is not a readable image)."""
    from copytrace.errors import MediaError
    from copytrace.media.image import load_image

    try:
        return _jpeg_uri(load_image(path, draft_size=THUMB_SIDE))
    except (MediaError, OSError):
        return None


def _frame_uri(path: str, media_type: str, time_s: float) -> str | None:
    """The picture at ``time_s`` (the image itself for a still); None when unreadable."""
    if media_type == "image":
        return _thumb_uri(path)
    if media_type != "video":
        return None
    from copytrace.errors import MediaError
    from copytrace.media.video import iter_frames_between

    try:
        for _, im in iter_frames_between(path, time_s, time_s + 1.0, THUMB_SIDE):
            return _jpeg_uri(im)
    except (MediaError, OSError):
        return None
    return None


def _img(uri: str | None, alt: str) -> str:
    if uri:
        return f'<img src="{uri}" alt="{html.escape(alt)}">'
    return f'<div class="noimg">{html.escape(alt)}: not readable</div>'


def _figure(path: str, caption: str) -> str:
    return f"<figure>{_img(_thumb_uri(path), 'picture')}<figcaption>{caption}</figcaption></figure>"


def _fmt(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60.0)
    return f"{int(m):02d}:{s:06.3f}"


def _timeline(label: str, duration_s: float | None, spans: list[tuple[float, float]]) -> str:
    """A bar the length of the file with the matched spans marked."""
    if not duration_s or duration_s <= 0:
        return ""
    marks = "".join(
        f'<div class="span" style="left:{100 * a / duration_s:.3f}%;'
        f'width:{max(0.4, 100 * (b - a) / duration_s):.3f}%" '
        f'title="{_fmt(a)}–{_fmt(b)}"></div>' for a, b in spans)
    return (f'<div class="lane">{html.escape(label)} (0–{_fmt(duration_s)})</div>'
            f'<div class="bar" data-duration="{duration_s:.3f}">{marks}</div>')


class _AudioView:
    """One pass over a file's sound: an envelope for the strip and clips of the asked spans."""

    def __init__(self, path: str, duration_s: float | None, spans: list[tuple[float, float]]):
        from copytrace.errors import MediaError
        from copytrace.media.audio import iter_audio

        self.duration_s = duration_s or 0.0
        self.envelope = np.zeros(ENVELOPE_BINS, np.float64)
        self.clips: list[str | None] = [None] * len(spans)
        wanted = [(a, min(b, a + CLIP_MAX_S)) for a, b in spans]
        pieces: list[list[np.ndarray]] = [[] for _ in spans]
        counts = np.zeros(ENVELOPE_BINS, np.int64)
        try:
            for t0, x in iter_audio(path, AUDIO_RATE):
                t = t0 + np.arange(len(x)) / AUDIO_RATE
                if self.duration_s > 0:
                    bins = np.clip((t / self.duration_s * ENVELOPE_BINS).astype(int), 0,
                                   ENVELOPE_BINS - 1)
                    np.add.at(self.envelope, bins, x.astype(np.float64) ** 2)
                    np.add.at(counts, bins, 1)
                for i, (a, b) in enumerate(wanted):
                    keep = (t >= a) & (t < b)
                    if keep.any():
                        pieces[i].append(x[keep])
        except (MediaError, OSError):
            return
        self.envelope = np.sqrt(self.envelope / np.maximum(counts, 1))
        for i, p in enumerate(pieces):
            if p:
                self.clips[i] = _wav_uri(np.concatenate(p))

    def strip(self, label: str, spans: list[tuple[float, float]]) -> str:
        if self.duration_s <= 0:
            return ""
        peak = float(self.envelope.max()) or 1.0
        w, h = ENVELOPE_BINS, 48
        bars = "".join(
            f'<rect x="{i}" y="{(h - v) / 2:.1f}" width="1" height="{v:.1f}" fill="#567"/>'
            for i, v in enumerate(self.envelope / peak * (h - 4) + 1))
        marks = "".join(
            f'<rect class="span" x="{w * a / self.duration_s:.2f}" y="0" '
            f'width="{max(1.0, w * (b - a) / self.duration_s):.2f}" height="{h}" '
            f'fill="#c33" fill-opacity="0.35"><title>{_fmt(a)}–{_fmt(b)}</title></rect>'
            for a, b in spans)
        return (f'<div class="lane">{html.escape(label)} (0–{_fmt(self.duration_s)})</div>'
                f'<svg class="wave" viewBox="0 0 {w} {h}" preserveAspectRatio="none">'
                f"{bars}{marks}</svg>")


def _wav_uri(x: np.ndarray) -> str:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(AUDIO_RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()


def _player(uri: str | None, label: str, start_s: float, end_s: float) -> str:
    if uri is None:
        return f'<div class="detail">{html.escape(label)}: sound not readable</div>'
    shown = min(end_s, start_s + CLIP_MAX_S)
    return (f'<figure><figcaption>{html.escape(label)} {_fmt(start_s)}–{_fmt(shown)} '
            f"(plays from {_fmt(start_s)})</figcaption>"
            f'<audio controls preload="none" src="{uri}" data-start="{start_s:.3f}"></audio>'
            "</figure>")


def _caption(m) -> str:
    verdict = "match" if m.score >= DECISION_SCORE else "below the threshold"
    if m.signal == "visual" and m.media_type == "image" and not m.segments:
        raw = "cosine plus the local-verification bonus"
    elif m.signal == "audio":
        raw = "aligned audio similarity, normalised for typical music, less a length penalty"
    elif m.signal == "text":
        raw = "log2 of the query characters the aligned passage covers"
    else:
        raw = "mean frame similarity along the aligned path"
    return (f"<b>{html.escape(m.title)}</b> ({html.escape(m.work_id)}, {html.escape(m.media_type)},"
            f" {html.escape(m.signal)})<br>score <b>{m.score:.3f}</b>: {verdict} "
            f"(threshold {DECISION_SCORE})<div class='detail'>similarity {m.similarity:.3f} ({raw})"
            f"</div>")


def _probe_duration(path: str) -> float | None:
    """A file's duration from its container (for reports made without the library)."""
    try:
        import av

        with av.open(path) as c:
            return c.duration / 1e6 if c.duration else None
    except Exception:  # noqa: BLE001 - no timeline is drawn then
        return None


_Box = tuple[tuple[int, int], list[tuple[float, float]]]  # (working size, polygon)


def _region_boxes(library, qpath: str, rpath: str) -> tuple[_Box | None, _Box | None]:
    """Where the two pictures overlap: the query's outline mapped into the reference by the
    verifier's RANSAC transform, and the reference's outline mapped back into the query."""
    if library is None:
        return None, None
    from copytrace.errors import MediaError

    try:
        v = library.verifier
        qf, rf = v.features(qpath, query=True), v.features(rpath)
        res = v.verify_features(qf, rf)
    except (MediaError, OSError):
        return None, None
    if res.transform is None or res.inliers < v.cfg.min_matches:
        return None, None
    m = np.asarray(res.transform, np.float64)
    if m.shape == (2, 3):
        m = np.vstack([m, [0.0, 0.0, 1.0]])
    try:
        inv = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return None, None

    def apply(h: np.ndarray, w_: int, h_: int) -> list[tuple[float, float]]:
        pts = np.array([[0, 0, 1], [w_, 0, 1], [w_, h_, 1], [0, h_, 1]], np.float64) @ h.T
        return [(float(x / z), float(y / z)) for x, y, z in pts]

    (qw, qh), (rw, rh) = qf.size, rf.size
    in_ref = [(min(max(x, 0), rw), min(max(y, 0), rh)) for x, y in apply(m, qw, qh)]
    in_query = [(min(max(x, 0), qw), min(max(y, 0), qh)) for x, y in apply(inv, rw, rh)]
    if res.mirrored:  # the transform maps the flipped query
        in_query = [(qw - x, y) for x, y in in_query]
    return ((qw, qh), in_query), ((rw, rh), in_ref)


def _boxed(uri: str | None, alt: str, box: _Box | None) -> str:
    if uri is None or box is None:
        return _img(uri, alt)
    (w, h), poly = box
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in poly)
    return (f'<div class="boxed" style="position:relative;display:inline-block">{_img(uri, alt)}'
            f'<svg class="region" viewBox="0 0 {w} {h}" preserveAspectRatio="none" '
            f'style="position:absolute;left:0;top:0;width:100%;height:100%">'
            f'<polygon points="{pts}" fill="none" stroke="#f0f" stroke-width="{max(w, h) / 100:.1f}"/>'
            "</svg></div>")


def _match_block(q, m, qpath: str, qname: str, ref_duration_s: float | None,
                 library=None) -> str:
    parts = [f"<div class='match-block'>{_caption(m)}"]
    segs = list(m.segments)
    if m.signal == "text":
        parts.append(_text_passages(qpath, qname, m, library))
    elif m.signal == "audio":
        q_spans = [(s.query_start_s, s.query_end_s) for s in segs]
        r_spans = [(s.ref_start_s, s.ref_end_s) for s in segs]
        shown = segs[:MAX_SEGMENTS_SHOWN]
        qv = _AudioView(qpath, q.duration_s, [(s.query_start_s, s.query_end_s) for s in shown])
        rv = _AudioView(m.path, ref_duration_s, [(s.ref_start_s, s.ref_end_s) for s in shown])
        parts.append(qv.strip(f"query {qname}", q_spans))
        parts.append(rv.strip(f"reference {m.title}", r_spans))
        for i, s in enumerate(shown):
            parts.append(f"<div class='detail'>segment {i + 1}: query {_fmt(s.query_start_s)}–"
                         f"{_fmt(s.query_end_s)} ↔ reference {_fmt(s.ref_start_s)}–"
                         f"{_fmt(s.ref_end_s)}, score {s.score:.3f}</div><div class='pair'>"
                         f"{_player(qv.clips[i], 'query', s.query_start_s, s.query_end_s)}"
                         f"{_player(rv.clips[i], 'reference', s.ref_start_s, s.ref_end_s)}</div>")
    elif segs:  # video, or an image found inside a video
        parts.append(_timeline(f"query {qname}", q.duration_s if q.media_type == "video" else None,
                               [(s.query_start_s, s.query_end_s) for s in segs]))
        parts.append(_timeline(f"reference {m.title}", ref_duration_s,
                               [(s.ref_start_s, s.ref_end_s) for s in segs]))
        for i, s in enumerate(segs[:MAX_SEGMENTS_SHOWN]):
            parts.append(f"<div class='detail'>segment {i + 1}: query {_fmt(s.query_start_s)}–"
                         f"{_fmt(s.query_end_s)} ↔ reference {_fmt(s.ref_start_s)}–"
                         f"{_fmt(s.ref_end_s)}, score {s.score:.3f}</div>")
            # The end frame a little inside the segment: its end time is often the file's end.
            inset = min(0.5, (s.query_end_s - s.query_start_s) / 4)
            for frac, what in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
                qt = s.query_start_s + frac * (s.query_end_s - s.query_start_s - inset)
                rt = s.ref_start_s + frac * (s.ref_end_s - s.ref_start_s - inset)
                parts.append(
                    f"<div class='pair keyframes'><figure>{_img(_frame_uri(qpath, q.media_type, qt), 'query')}"
                    f"<figcaption>query {what} {_fmt(qt)}</figcaption></figure><figure>"
                    f"{_img(_frame_uri(m.path, m.media_type, rt), 'reference')}"
                    f"<figcaption>reference {what} {_fmt(rt)}</figcaption></figure></div>")
    else:  # image against image
        qbox, rbox = _region_boxes(library, qpath, m.path)
        parts.append(f"<div class='pair'><figure>{_boxed(_thumb_uri(qpath), 'query', qbox)}"
                     f"<figcaption>query {html.escape(qname)}</figcaption></figure><figure>"
                     f"{_boxed(_thumb_uri(m.path), 'reference', rbox)}<figcaption>reference "
                     f"{html.escape(m.path)}</figcaption></figure></div>")
        if qbox is not None:
            parts.append("<div class='detail'>boxed: the region each picture shares with the "
                         "other (local-feature verification)</div>")
    parts.append("</div>")
    return "".join(parts)


TEXT_CONTEXT_CHARS = 160
TEXT_PASSAGE_CHARS = 1200


def _text_passages(qpath: str, qname: str, m, library) -> str:
    """Each matched passage highlighted in its context, query beside reference (issue 21)."""
    from copytrace.errors import CopytraceError
    from copytrace.text.decode import read_text, visible

    try:
        query = read_text(qpath)
        ref = (library.signal("text").reference(m.work_id).decoded if library is not None
               else read_text(m.path))
    except (CopytraceError, ValueError, OSError) as e:
        return f"<div class='detail'>text not shown: {html.escape(str(e))}</div>"

    def shown(decoded, start: int, end: int) -> str:
        total = len(decoded.source_text) if decoded.source is not None else len(decoded.text)
        before = visible(decoded, max(0, start - TEXT_CONTEXT_CHARS), start)
        body = visible(decoded, start, end)
        after = visible(decoded, end, min(total, end + TEXT_CONTEXT_CHARS))
        if len(body) > TEXT_PASSAGE_CHARS:
            half = TEXT_PASSAGE_CHARS // 2
            body = f"{body[:half]} … {body[-half:]}"
        return (f"<div class='textpassage'>…{html.escape(before)}<mark>{html.escape(body)}"
                f"</mark>{html.escape(after)}…</div>")

    parts = []
    for i, s in enumerate(list(m.segments)[:MAX_SEGMENTS_SHOWN]):
        parts.append(
            f"<div class='detail'>passage {i + 1}: query characters {s.query_start_char}–"
            f"{s.query_end_char} ↔ reference {s.ref_start_char}–{s.ref_end_char}, score "
            f"{s.score:.3f}</div><div class='pair'><figure>"
            f"{shown(query, s.query_start_char, s.query_end_char)}<figcaption>query "
            f"{html.escape(qname)}</figcaption></figure><figure>"
            f"{shown(ref, s.ref_start_char, s.ref_end_char)}<figcaption>reference "
            f"{html.escape(m.title)}</figcaption></figure></div>")
    return "".join(parts)


def _work_duration(library, m) -> float | None:
    if m.media_type in ("image", "text"):
        return None
    if library is not None:
        from copytrace.errors import UnknownWorkError

        try:
            return library.get(m.work_id).duration_s
        except UnknownWorkError:
            pass
    return _probe_duration(m.path)


def _header(title: str, library) -> str:
    import copytrace

    rows = [("generated", time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())),
            ("copytrace", copytrace.__version__),
            ("decision", f"score ≥ {DECISION_SCORE} (calibrated, the same for every query)")]
    if library is not None:
        lib_id = library.store.catalog.library_id()
        rows.insert(0, ("library", f"{library.store.root} (id {lib_id})"))
        cfg = library.config
        rows.append(("engine", (f"{cfg.backend}, precision {cfg.precision}, aligner "
                                f"{cfg.aligner}, verify top {cfg.verify_top}")))
        for label, spec_of in (("image/video model", lambda: library.image_spec),
                               ("audio model", lambda: library.audio_spec)):
            try:
                spec = spec_of()
            except Exception:  # noqa: BLE001 - a model that cannot load is named, not fatal
                rows.append((label, "not available"))
                continue
            prec = getattr(spec, "threshold_precision", None)
            rows.append((label, f"{spec.model_id}: similarity threshold "
                                f"{spec.threshold_similarity:.4f}, slope {spec.score_slope:g}"
                                + (f", precision {prec:.3f} at the threshold" if prec else "")))
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return f"<header><h1>{html.escape(title)}</h1><dl>{dl}</dl></header>"


def render_html(results: list[QueryResult], title: str = "copytrace report", library=None,
                names: dict[str, str] | None = None) -> str:
    """``library`` (optional) fills the header with its models and thresholds; ``names`` maps a
    query path to the name shown (the server's temporary files have meaningless names)."""
    names = names or {}
    parts = ["<!doctype html><meta charset='utf-8'>", f"<title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style>", _header(title, library)]
    for r in results:
        q = r.query
        qname = names.get(q.path, Path(q.path).name)
        parts.append("<section>")
        verdict = (f"<span class='match'>{len(r.matches)} match(es)</span>" if r.matches
                   else "<span class='none'>no registered work matched</span>")
        dur = f", {_fmt(q.duration_s)}" if q.duration_s else ""
        parts.append(f"<h2>{html.escape(qname)}: {verdict}</h2>"
                     f"<div class='detail'>{html.escape(q.media_type)}{dur}, sha256 {q.sha256}"
                     "</div>")
        if not r.matches and q.media_type == "image":
            parts.append(f"<div class='row'>{_figure(q.path, 'query')}</div>")
        for m in r.matches:
            parts.append(_match_block(q, m, q.path, qname, _work_duration(library, m), library))
        parts.append(f"<p class='none'>answered in {r.elapsed_s * 1000:.0f} ms</p></section>")
    return "\n".join(parts)


def write_html(results: list[QueryResult], path: str, title: str = "copytrace report",
               library=None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render_html(results, title, library), encoding="utf-8")
