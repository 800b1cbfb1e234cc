"""The evidence page for video, audio and image matches, from real planted copies."""
from __future__ import annotations

import re
from fractions import Fraction

import copytrace
from copytrace.report import render_html

from .test_server import DATA, write_wav
from .video_clips import pan_frames, write_clip


def test_video_audio_and_image_evidence(tmp_path, photo_paths):
    ref = pan_frames("face_astronaut.jpg", 10 * 25, seed=1)
    video = write_clip(tmp_path / "ref.mp4", ref, Fraction(25))
    clip = write_clip(tmp_path / "clip.mp4", ref[75:200], Fraction(25))  # 3 s – 8 s of ref
    song = write_wav(tmp_path / "song.wav", 45.0)  # the test tracks back to back, repeated
    from PIL import Image

    im = Image.open(photo_paths[0])
    w, h = im.size
    crop = tmp_path / "crop.jpg"
    im.crop((w // 10, h // 8, w * 9 // 10, h)).save(crop, quality=92)  # x 10–90 %, y 12.5–100 %
    with copytrace.open(str(tmp_path / "db")) as lib:
        lib.add(str(video))
        lib.add(str(photo_paths[0]), title="Cat")
        lib.add(str(DATA / "music_beast.ogg"), title="Beast")
        results = [lib.query(str(clip)), lib.query(str(photo_paths[0])), lib.query(str(song)),
                   lib.query(str(crop))]
        page = render_html(results, "evidence", library=lib, names={str(song): "upload.wav"})
        spec = lib.image_spec
    assert all(r.matches for r in results)
    header = page[page.index("<header>"):page.index("</header>")]
    assert spec.model_id in header and f"{spec.threshold_similarity:.4f}" in header
    assert "ct-audio-nafp" in header and "score ≥ 0.5" in header

    video_part = page[page.index("clip.mp4"):page.index("Cat")]
    # Keyframes at the segment's start, middle and end on both sides, all decoded.
    assert video_part.count("class='pair keyframes'") == 3
    assert video_part.count('<img src="data:image/jpeg') == 6
    # The reference's bar marks 3 s – 8 s of its 10 s.
    left, width = map(float, re.findall(
        r'reference ref \(0–00:10\.000\)</div><div class="bar"[^>]*><div class="span" '
        r'style="left:([\d.]+)%;width:([\d.]+)%', video_part)[0])
    assert abs(left - 30) < 5 and abs(left + width - 80) < 5
    assert "reference start 00:03" in video_part

    assert re.search(r"score <b>0\.9\d\d</b>: match", page)
    assert "similarity 1.5" in page and "cosine plus the local-verification bonus" in page

    audio_part = page[page.index("upload.wav"):]
    assert audio_part.count('<svg class="wave"') == 2
    assert 'class="span"' in audio_part
    starts = [float(x) for x in re.findall(r'<audio controls[^>]*data-start="([\d.]+)"',
                                           audio_part)]
    assert len(starts) >= 2 and 'src="data:audio/wav;base64,' in audio_part
    # The first reference span starts where the segment says (the beast track from 0 s).
    assert "plays from 00:00" in audio_part

    # The cropped copy: the reference's box is the crop's region.
    crop_part = page[page.index("crop.jpg"):]
    boxes = re.findall(r'<svg class="region" viewBox="0 0 (\d+) (\d+)"[^>]*><polygon '
                       r'points="([^"]+)"', crop_part)
    assert len(boxes) == 2  # the query's and the reference's
    rw, rh, pts = boxes[1]
    xy = [tuple(map(float, p.split(","))) for p in pts.split()]
    xs, ys = [x / int(rw) for x, _ in xy], [y / int(rh) for _, y in xy]
    assert abs(min(xs) - 0.10) < 0.04 and abs(max(xs) - 0.90) < 0.04, xs
    assert abs(min(ys) - 0.125) < 0.04 and max(ys) > 0.96, ys
