"""serve with a [cascade]: the tiny real detector finds coloured squares, the tiny real colour
classifier names each crop's "species", in serve's worker process (both models in one child)
and in-process; JSON lines, a real mosquitto (per-species counts and events), /latest and the
event list (the species' crop as its thumbnail)."""

from __future__ import annotations

import io
import json
import subprocess
import urllib.request

import pytest
from PIL import Image

from edgekit.errors import EdgekitError
from edgekit.stream import serve
from edgekit.stream.config import from_dict
from tests.cascade.conftest import serving
from tests.stream.conftest import edgekit_cmd
from tests.stream.test_mqtt import Subscriber, broker  # noqa: F401  (fixture)
from tests.stream.test_serve_detect import SCENES, write_video


@pytest.fixture(scope="module")
def scenes_avi(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "scenes.avi", SCENES)


def test_serve_cascade_in_the_worker_lines_and_mqtt(tmp_path, detect_bundle, species_bundle,
                                                    scenes_avi, broker):  # noqa: F811  # fmt: skip
    config = tmp_path / "edgekit.toml"
    config.write_text(
        f'[model]\npath = "{detect_bundle}"\ndevice = "cpu"\n[source]\nuri = "{scenes_avi}"\n'
        f'[pipeline]\nhold_s = 0.0\n[worker]\nmode = "process"\n'
        f'[cascade]\nclassifier = "{species_bundle}"\ncrop_labels = "red,green"\ntop_k = 2\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {broker}\ntopic = "feeder"\nmin_interval_s = 0.0\n'
    )
    sub = Subscriber(broker, "feeder")
    out = subprocess.run([*edgekit_cmd(), "serve", "--config", str(config)],
                         capture_output=True, text=True, timeout=180)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    results = [r for r in lines if "frame" in r]
    assert len(results) == 40
    r = results[14]  # red + green
    assert {"detect_ms", "classify_ms", "crop_ms", "crops"} <= set(r)
    assert r["crops"] == 2 and r["inference_ms"] >= r["classify_ms"] > 0
    by = {d["label"]: d for d in r["detections"]}
    assert [c["label"] for c in by["red"]["classes"]] == ["cardinal", "parakeet"]
    assert by["green"]["classes"][0]["label"] == "parakeet"
    assert r["counts"] == {"cardinal": 1, "parakeet": 1}  # species, not detector labels
    blue = results[35]  # blue is not a crop label: counted as the detector names it
    assert blue["detections"][0]["classes"] == [] and blue["counts"] == {"blue": 1}
    events = [(e["event"], e.get("label")) for e in lines if "event" in e]
    assert events[:5] == [("label_appeared", "cardinal"), ("label_appeared", "parakeet"),
                          ("label_left", "cardinal"), ("label_left", "parakeet"),
                          ("label_appeared", "blue")]  # fmt: skip
    sub.wait_for(lambda m: m == ("feeder/status", "offline", False))
    counts = [json.loads(p) for t, p, _ in sub.messages if t == "feeder/counts"]
    # ... {} last: the clean stop at the video's end turns blue off (tests/stream/test_mqtt_stop)
    assert counts == [{"cardinal": 1}, {"cardinal": 1, "parakeet": 1}, {}, {"blue": 1}, {}]
    mqtt_events = [json.loads(p) for t, p, _ in sub.messages if t == "feeder/event"]
    assert ("label_appeared", "parakeet") in [(e["event"], e.get("label")) for e in mqtt_events]
    per_species = {t.rsplit("/", 1)[1] for t, _, _ in sub.messages if "/count/" in t}
    assert {"cardinal", "parakeet", "blue"} <= per_species
    sub.close()


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_latest_and_the_event_list_show_the_species(detect_bundle, species_bundle, tmp_path):
    cascade = {"model": {"path": str(detect_bundle), "device": "cpu"},
               "cascade": {"classifier": str(species_bundle)}}
    with serving(cascade, tmp_path) as (base, _):
        latest = json.loads(get(base + "/latest"))
        species = {d["label"]: d["classes"][0]["label"] for d in latest["result"]["detections"]}
        assert species == {"red": "cardinal", "blue": "bluejay"}
        assert latest["in_view"] == {"bluejay": 1, "cardinal": 1}
        events = json.loads(get(base + "/events.json"))
        appeared = {e["label"]: e for e in events if e["event"] == "label_appeared"}
        assert set(appeared) == {"cardinal", "bluejay"}
        sizes = {k: Image.open(io.BytesIO(get(base + e["thumb"]))).size
                 for k, e in appeared.items() if e["thumb"]}  # fmt: skip
        assert sizes and all(w < 200 for w, h in sizes.values()), sizes  # crops, not frames
        page = get(base + "/").decode()
        assert "d.classes[0]" in page  # the overlay writes the species beside the box


def test_cascade_section_is_checked(detect_bundle, species_bundle):
    with pytest.raises(EdgekitError, match="unknown key cascade.clasifier"):
        from_dict({"cascade": {"clasifier": "x"}})
    with pytest.raises(EdgekitError, match="cascade.max_crops"):
        from_dict({"cascade": {"max_crops": -1}})
    with pytest.raises(EdgekitError, match="cascade.threshold"):
        from_dict({"cascade": {"threshold": 1.5}})
    cfg = from_dict({"model": {"path": str(detect_bundle), "device": "cpu"},
                     "cascade": {"classifier": str(species_bundle), "crop_labels": "bird"}})
    with pytest.raises(EdgekitError, match="crop label bird"):
        serve.load_model(cfg)


def test_serve_check_names_the_crop_classifier_and_crop_labels_need_one(
    detect_bundle, species_bundle, scenes_avi
):
    """--crop-labels without a classifier ran a plain detector without a word; --crop-labels ,
    was taken as "every label" (detect refuses it)."""
    from click.testing import CliRunner

    from edgekit.cli import main

    base = ["serve", "--model", str(detect_bundle), "--device", "cpu", "--source",
            str(scenes_avi), "--check"]  # fmt: skip
    r = CliRunner().invoke(main, [*base, "--crop-labels", "red"])
    assert r.exit_code == 2 and "--crop-labels needs --classify CLASSIFIER" in r.stderr
    r = CliRunner().invoke(main, [*base, "--classify", str(species_bundle), "--crop-labels", ","])
    assert r.exit_code == 2 and "give one or more detector labels" in r.stderr  # as detect says
    r = CliRunner().invoke(main, [*base, "--classify", str(species_bundle)])
    assert r.exit_code == 0, r.output
    assert f"(detect, cpu) + classifier {species_bundle};" in r.stdout


def test_serve_flags_make_a_cascade(detect_bundle, species_bundle, scenes_avi):
    cmd = [*edgekit_cmd(), "serve", "--model", str(detect_bundle), "--device", "cpu",
           "--source", str(scenes_avi), "--classify", str(species_bundle),
           "--crop-labels", "red", "--max-frames", "15", "--worker", "inline"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = [json.loads(line) for line in out.stdout.splitlines() if '"frame"' in line][14]
    by = {d["label"]: d for d in r["detections"]}
    assert by["red"]["classes"][0]["label"] == "cardinal" and by["green"]["classes"] == []
    check = subprocess.run([*cmd, "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and "(detect, cpu)" in check.stdout, check.stderr
    bad = subprocess.run([*cmd[:-6], "--classify", str(detect_bundle), "--check"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 1 and "is a detector, not a classifier" in bad.stderr
