"""Evidence for people: an HTML page with each query beside the works it matched."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from copytrace.types import QueryResult

THUMB_SIDE = 320


def _thumb_uri(path: str) -> str | None:
    """A small inline JPEG of an image file (None when the file is not a readable image)."""
    from copytrace.errors import MediaError
    from copytrace.media.image import load_image

    try:
        im = load_image(path, draft_size=THUMB_SIDE)
    except MediaError:
        return None
    im.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(path: str, caption: str) -> str:
    uri = _thumb_uri(path)
    img = f'<img src="{uri}" alt="">' if uri else '<div class="noimg">no preview</div>'
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def _fmt(t: float) -> str:
    m, s = divmod(max(t, 0.0), 60.0)
    return f"{int(m):02d}:{s:06.3f}"


def render_html(results: list[QueryResult], title: str = "copytrace report") -> str:
    parts = [
        "<!doctype html><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        ("<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "section{border-top:1px solid #ccc;padding:1em 0}.row{display:flex;gap:1.5em;"
        "flex-wrap:wrap}figure{margin:0}img{max-width:320px;max-height:320px;display:block}"
        "figcaption{font-size:.85em;max-width:320px;word-break:break-all}.none{color:#777}"
        ".match{color:#a00;font-weight:bold}.noimg{width:160px;height:90px;background:#eee}"
        "</style>"),
        f"<h1>{html.escape(title)}</h1>",
    ]
    for r in results:
        q = r.query
        parts.append("<section>")
        verdict = (
            f"<span class='match'>{len(r.matches)} match(es)</span>" if r.matches
            else "<span class='none'>no registered work matched</span>"
        )
        parts.append(f"<h2>{html.escape(Path(q.path).name)}: {verdict}</h2><div class='row'>")
        parts.append(_figure(q.path, f"query: {html.escape(q.path)}"))
        for m in r.matches:
            segs = "".join(
                f"<br>query {_fmt(s.query_start_s)}–{_fmt(s.query_end_s)} ↔ "
                f"reference {_fmt(s.ref_start_s)}–{_fmt(s.ref_end_s)}"
                for s in m.segments
            )
            cap = (
                f"<b>{html.escape(m.title)}</b> ({m.work_id})<br>score {m.score:.3f}, "
                f"cosine {m.similarity:.3f}, {m.signal}{segs}<br>{html.escape(m.path)}"
            )
            parts.append(_figure(m.path, cap))
        parts.append(f"</div><p class='none'>answered in {r.elapsed_s * 1000:.0f} ms</p></section>")
    return "\n".join(parts)


def write_html(results: list[QueryResult], path: str, title: str = "copytrace report") -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(render_html(results, title), encoding="utf-8")
