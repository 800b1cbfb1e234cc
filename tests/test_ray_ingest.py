"""``copytrace add --ray`` on a local Ray: real photos, real music, a real video with its
soundtrack (one work, two signals), a duplicate and a non-media file. The library it builds is
the one plain ``add`` builds, byte for byte (works, descriptors, window statistics, index); a
run that fails part-way resumes without describing again what it registered."""
from __future__ import annotations

import shutil
import sqlite3

import pytest
from click.testing import CliRunner

import copytrace
from copytrace.cli import main

from .conftest import DATA
from .test_library_media import SR, write_av_clip
from .video_clips import pan_frames

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs): each run joins it instead of starting its own."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    from copytrace.media.audio import load_audio

    root = tmp_path_factory.mktemp("media")
    for name in ("animal_cat.jpg", "face_astronaut.jpg", "grey_camera.jpg", "object_rocket.jpg",
                 "music_beast.ogg"):
        shutil.copy(DATA / name, root / name)
    shutil.copy(DATA / "animal_cat.jpg", root / "zz_same_cat.jpg")  # same content, listed later
    (root / "notes.txt").write_bytes(b"\x00\x01\x02 not media")
    track = load_audio(DATA / "music_brainsukker.ogg", SR)[: 8 * SR]
    write_av_clip(root / "clip.mp4", pan_frames("building_temple.jpg", 8 * 25, seed=3), 25, track)
    return root


def snapshot(root) -> dict:
    """Everything a library holds but the registration times: works, descriptors, window
    statistics (raw bytes), and the index's vector count per signal."""
    db = sqlite3.connect(root / "catalog.sqlite")
    works = sorted(db.execute("SELECT work_id, sha256, title, path, media_type, duration_s, "
                              "model FROM works"))
    desc = sorted(db.execute("SELECT work_id, signal, model, n, dims, starts_s, ends_s, vectors "
                             "FROM descriptors"))
    stats = sorted(db.execute("SELECT work_id, signal, kind, key, n, data FROM window_stats"))
    db.close()
    return {"works": works, "descriptors": desc, "stats": stats}


@pytest.fixture(scope="module")
def plain(media, tmp_path_factory):
    root = tmp_path_factory.mktemp("plain") / "lib"
    with copytrace.open(str(root)) as lib:
        added, failed = lib.add_many([str(media)])
    assert not failed and sum(r.created for r in added) == 6
    return snapshot(root)


def _ingest(root, media, **kw):
    from copytrace.ingest.ray import RayIngestConfig, add_with_ray

    with copytrace.open(str(root)) as lib:
        return add_with_ray(lib, [str(media)], RayIngestConfig(workers=2), **kw)


def test_ray_library_is_identical_to_plain_add(local_ray, media, plain, tmp_path):
    added, failed, counts = _ingest(tmp_path / "lib", media)
    assert not failed
    # 8 files listed (notes.txt is skipped), 7 described: the duplicate's content was not
    # registered when the run began; registering it finds the work its first copy made
    assert (counts.files, counts.added, counts.known, counts.described) == (8, 6, 1, 7)
    got = snapshot(tmp_path / "lib")
    assert got["works"] == plain["works"]
    assert [r[:5] for r in got["descriptors"]] == [r[:5] for r in plain["descriptors"]]
    # bytewise: the actors run the same models at the same precision on the same decoder
    assert got["descriptors"] == plain["descriptors"]
    assert got["stats"] == plain["stats"]
    kinds = {r[4]: r[0] for r in got["works"]}
    clip = next(w for w in got["works"] if w[2] == "clip")
    assert {r[1] for r in got["descriptors"] if r[0] == clip[0]} == {"visual", "audio"}
    assert set(kinds) == {"image", "audio", "video"}
    dup = next(r for r in added if r.path.endswith("zz_same_cat.jpg"))
    assert not dup.created and dup.work.title == "animal_cat"  # listed first names the work
    with copytrace.open(str(tmp_path / "lib")) as lib:
        assert lib.store.check() == []
        res = lib.query(str(media / "clip.mp4"))
        assert res.matches and res.matches[0].work_id == clip[0]


def test_failed_run_resumes_without_describing_again(local_ray, media, plain, tmp_path):
    seen = []

    def crash_after_three(path, res):
        seen.append(path)
        if len(seen) == 3:
            raise RuntimeError("simulated crash of the ingesting process")

    with pytest.raises(RuntimeError, match="simulated crash"):
        _ingest(tmp_path / "lib", media, on_result=crash_after_three)
    registered = len(snapshot(tmp_path / "lib")["works"])
    assert registered == 3
    _, failed, counts = _ingest(tmp_path / "lib", media)
    assert not failed
    # the three registered files (and the duplicate of one) are hashed and skipped, never
    # described again; the other three are described and added
    assert (counts.known, counts.described, counts.added) == (4, 3, 3)
    assert snapshot(tmp_path / "lib") == plain
    _, _, again = _ingest(tmp_path / "lib", media)
    assert (again.described, again.added, again.known) == (0, 0, 7)


def test_cli_add_ray(local_ray, media, plain, tmp_path):
    db = tmp_path / "lib"
    r = CliRunner().invoke(main, ["add", str(media), "--ray", "--workers", "2", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert r.output.count("\tadded\t") == 6 and r.output.count("\texists\t") == 1
    assert snapshot(db) == plain
    # `--ray PATH`: the path is read as a path, not as a cluster address
    r = CliRunner().invoke(main, ["add", "--ray", str(media / "grey_camera.jpg"),
                                  "--db", str(db)])
    assert r.exit_code == 0 and "\texists\t" in r.output, r.output
    bad = tmp_path / "broken.jpg"
    bad.write_bytes((DATA / "grey_camera.jpg").read_bytes()[:300])
    r = CliRunner().invoke(main, ["add", str(bad), "--ray", "--db", str(db)])
    assert r.exit_code == 1 and "broken.jpg" in r.output
    assert len(snapshot(db)["works"]) == 6


def test_frames_end_after_their_start_when_the_container_announces_too_little(tmp_path):
    """A container whose header announces less than its frames span (an MPEG-PS eval video
    announced 0.04 s for 3 s of frames): every frame still ends at or after its start, so the
    descriptors are valid for add_descriptors (and for Ray ingestion)."""
    from fractions import Fraction

    from copytrace.signals.frames import describe_video_frames

    from .video_clips import tiny_embed, write_clip

    path = write_clip(tmp_path / "c.mp4", pan_frames("object_coffee.jpg", 4 * 25, seed=2),
                      Fraction(25))
    d, duration_s = describe_video_frames(str(path), tiny_embed, "tiny", 192, announced_s=0.04)
    assert len(d) >= 3 and (d.ends_s >= d.starts_s).all()
    assert duration_s > d.starts_s[-1]
