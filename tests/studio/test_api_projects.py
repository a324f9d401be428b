"""The projects API: summaries, items, pictures, class layers and statistics, validation, import, upload."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from studio.conftest import VESSELS, RecordingQueue, error_of, task_ended
from unetkit.project import Project, display_rgb, read_pixels


def png_array(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_projects_summary_items_and_class_stats(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    [summary] = client.get("/api/projects").json()
    assert summary == {"name": VESSELS, "datasets": 1, "images": 6, "objects": 6, "error": None,
                       "classes": [{"title": "vessel", "shape": "bitmap", "color": "#FF3B30"}]}  # fmt: skip
    assert client.get("/api/workspace").json()["projects"] == [summary]
    info = client.get(f"/api/projects/{VESSELS}").json()
    assert info["datasets"] == [{"name": "ds0", "images": 6, "objects": 6}]
    [stats] = info["class_stats"]
    project = Project.read(vessels_workspace / VESSELS)
    pixels = sum(int(np.count_nonzero(lb.geometry.to_mask(a.height, a.width)))
                 for a in (it.read_annotation(project.meta) for it in project.items()) for lb in a.labels)  # fmt: skip
    assert stats == {"title": "vessel", "shape": "bitmap", "color": "#FF3B30", "objects": 6, "images": 6,
                     "pixels": pixels}  # fmt: skip
    page = client.get(f"/api/projects/{VESSELS}/items", params={"offset": 4, "limit": 5}).json()
    assert page["total"] == 6 and [i["name"] for i in page["items"]] == ["fundus_05.png", "fundus_06.png"]
    assert page["items"][0] == {"dataset": "ds0", "name": "fundus_05.png", "width": 64, "height": 64,
                                "objects": 1, "classes": ["vessel"], "error": None}  # fmt: skip
    assert client.get(f"/api/projects/{VESSELS}/items", params={"dataset": "ds0"}).json()["total"] == 6
    assert (
        error_of(client.get(f"/api/projects/{VESSELS}/items", params={"dataset": "nope"}), 404) == "not_found"
    )


def test_the_stats_follow_a_changed_project(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    assert client.get(f"/api/projects/{VESSELS}").json()["class_stats"][0]["objects"] == 6
    ann = vessels_workspace / VESSELS / "ds0" / "ann" / "fundus_01.png.json"
    data = json.loads(ann.read_text())
    data["objects"] = []
    ann.unlink()  # a new file: the ann/ folder changes, as any writer of a project changes it
    ann.write_text(json.dumps(data))
    stats = client.get(f"/api/projects/{VESSELS}").json()["class_stats"][0]
    assert stats["objects"] == 5 and stats["images"] == 5


def test_the_picture_is_what_project_render_shows_and_layers_are_rgba(vessels_workspace, open_client):
    client = open_client(vessels_workspace)
    base = f"/api/projects/{VESSELS}/items/ds0/fundus_01.png"
    image = png_array(client.get(f"{base}/image.png"))
    item = vessels_workspace / VESSELS / "ds0" / "img" / "fundus_01.png"
    assert np.array_equal(image, display_rgb(read_pixels(item)))
    layer = png_array(client.get(f"{base}/layers/vessel.png"))
    assert layer.shape == (64, 64, 4)
    project = Project.read(vessels_workspace / VESSELS)
    ann = project.datasets[0].items[0].read_annotation(project.meta)
    mask = ann.labels[0].geometry.to_mask(64, 64)
    assert np.array_equal(layer[..., 3] == 255, mask) and not layer[..., 3][~mask].any()
    assert tuple(layer[mask][0]) == (0xFF, 0x3B, 0x30, 255)
    assert error_of(client.get(f"{base}/layers/kiwi.png"), 404) == "not_found"
    assert error_of(client.get(f"/api/projects/{VESSELS}/items/ds0/nope.png/image.png"), 404) == "not_found"
    assert error_of(client.get(f"{base}/image.png", params={"channels": "1,2"}), 400) == "invalid_input"


def test_16_bit_and_multichannel_pictures(tmp_path, open_client):
    from unetkit.project import Annotation, ProjectMeta, ProjectWriter

    root = tmp_path / "ws"
    writer = ProjectWriter(root / "deep", ProjectMeta())
    rng = np.random.default_rng(0)
    deep = (rng.random((20, 30, 1)) * 4000).astype(np.uint16)
    many = (rng.random((20, 30, 5)) * 255).astype(np.uint8)
    writer.add_item("ds", "deep.png", deep, Annotation(20, 30))
    writer.add_item("ds", "many.tif", many, Annotation(20, 30))
    writer.write_meta()
    client = open_client(root)
    shown = png_array(client.get("/api/projects/deep/items/ds/deep.png/image.png"))
    assert np.array_equal(shown, display_rgb(deep))
    shown = png_array(
        client.get("/api/projects/deep/items/ds/many.tif/image.png", params={"channels": "4,3,2"})
    )
    assert np.array_equal(shown, display_rgb(many, (4, 3, 2)))


def test_multiclass_lemons(lemons_workspace, open_client):
    client = open_client(lemons_workspace)
    info = client.get("/api/projects/lemons").json()
    stats = {c["title"]: c for c in info["class_stats"]}
    assert set(stats) == {"kiwi", "lemon"} and all(
        c["pixels"] > 0 and c["images"] > 0 for c in stats.values()
    )
    assert info["summary"]["objects"] == sum(c["objects"] for c in stats.values())
    item = client.get("/api/projects/lemons/items", params={"limit": 1}).json()["items"][0]
    base = f"/api/projects/lemons/items/{item['dataset']}/{item['name']}"
    image = png_array(client.get(f"{base}/image.png"))
    assert image.shape == (item["height"], item["width"], 3)
    for title in item["classes"]:
        layer = png_array(client.get(f"{base}/layers/{title}.png"))
        assert layer.shape == (item["height"], item["width"], 4) and (layer[..., 3] == 255).any()
    assert client.get("/api/projects/lemons/validate").json() == {"ok": True, "problems": []}


def test_validate_maps_problems_to_items(vessels_workspace, open_client):
    ann = vessels_workspace / VESSELS / "ds0" / "ann" / "fundus_02.png.json"
    data = json.loads(ann.read_text())
    data["objects"][0]["classTitle"] = "kiwi"
    ann.write_text(json.dumps(data))
    report = open_client(vessels_workspace).get(f"/api/projects/{VESSELS}/validate").json()
    assert report["ok"] is False
    [problem] = report["problems"]
    assert problem["dataset"] == "ds0" and problem["item"] == "fundus_02.png"
    assert problem["path"].startswith("$.objects[0]") and "kiwi" in problem["message"]
    assert problem["file"] == f"{VESSELS}/ds0/ann/fundus_02.png.json" and problem["warning"] is False


def test_a_missing_or_broken_project(vessels_workspace, open_client):
    (vessels_workspace / "broken").mkdir()
    (vessels_workspace / "broken" / "meta.json").write_text("{not json")
    (vessels_workspace / "plain").mkdir()
    client = open_client(vessels_workspace)
    listed = {p["name"]: p for p in client.get("/api/projects").json()}
    assert listed["broken"]["error"] and listed["broken"]["images"] == 0
    assert error_of(client.get("/api/projects/broken"), 400) == "invalid_input"
    assert error_of(client.get("/api/projects/plain"), 404) == "not_a_project"
    assert error_of(client.get("/api/projects/nope"), 404) == "not_found"
    assert error_of(client.get("/api/projects/..%2F..%2Fetc/items"), 403) == "outside_workspace"


def test_import_submits_every_option(vessels_workspace, open_client):
    (vessels_workspace / "raw" / "img").mkdir(parents=True)
    (vessels_workspace / "raw" / "fov").mkdir()
    client = open_client(vessels_workspace, tasks=RecordingQueue())
    body = {"images": "raw/img", "masks": "raw/img", "out": "imported", "class_name": "road", "mask_suffix": "_m",
            "match": "^(\\d+)_", "fov": "raw/fov", "fov_suffix": "_f", "neutral": "void", "value_map": "1=road",
            "ignore": "255", "threshold": 10, "instances": True, "tag": "train", "split": 0.8, "seed": 3,
            "dataset": "d1"}  # fmt: skip
    task = client.post("/api/projects/import", json=body).json()
    assert task["kind"] == "import" and task["outputs"] == {"project": "imported"}
    argv = task["argv"]
    assert argv[:4] == ["import", "masks", "-o", "imported"]
    pairs = dict(zip(argv[4::2], argv[5::2]))
    assert pairs["--images"] == "raw/img" and pairs["--fov"] == "raw/fov" and pairs["--class"] == "road"
    assert pairs["--value-map"] == "1=road" and pairs["--split"] == "0.8" and "--instances" in argv
    bad = [({**body, "classes": "a,b"}, "invalid_input"), ({**body, "value_map": "x"}, "invalid_input"),
           ({**body, "threshold": 0}, "invalid_input"), ({**body, "colour": 1}, "invalid_input"),
           ({"out": "x", "images": "raw/img"}, "invalid_input")]  # fmt: skip
    for wrong, code in bad:
        assert error_of(client.post("/api/projects/import", json=wrong), 400) == code
    assert error_of(client.post("/api/projects/import", json={**body, "out": VESSELS}), 409) == "exists"
    assert error_of(client.post("/api/projects/import", json={**body, "images": "nope"}), 404) == "not_found"
    assert (
        error_of(client.post("/api/projects/import", json={**body, "out": "../x"}), 403)
        == "outside_workspace"
    )


def test_upload_then_import_runs_to_a_project(vessels_workspace, open_client):
    from unetkit.demo.synthetic import draw_fundus

    client = open_client(vessels_workspace)
    images, masks = [], []
    for i in range(3):
        image, mask = draw_fundus(i, 48)
        images.append(("files", (f"f{i}.png", _png(image))))
        masks.append(("files", (f"f{i}.png", _png(mask.astype(np.uint8) * 255))))
    assert client.post("/api/upload", data={"folder": "raw/images"}, files=images).json() == {
        "saved": [f"raw/images/f{i}.png" for i in range(3)]
    }
    client.post("/api/upload", data={"folder": "raw/masks"}, files=masks)
    task = client.post(
        "/api/projects/import", json={"images": "raw/images", "masks": "raw/masks", "out": "new"}
    )
    task = task_ended(client, task.json()["id"])
    assert task["state"] == "done", task.get("log")
    assert client.get("/api/projects/new").json()["summary"]["images"] == 3


def test_upload_refusals(vessels_workspace, open_client):
    client = open_client(vessels_workspace, max_upload_mb=0.01)
    one = [("files", ("a.png", b"x"))]
    for name in ("../a.png", ".hidden", "a/b.png", "a\\b.png"):
        files = [("files", (name, b"x"))]
        assert error_of(client.post("/api/upload", data={"folder": "up"}, files=files), 400) == "invalid_name"
    assert (
        error_of(client.post("/api/upload", data={"folder": "../up"}, files=one), 403) == "outside_workspace"
    )
    assert (
        error_of(client.post("/api/upload", data={"folder": ".studio/x"}, files=one), 403)
        == "outside_workspace"
    )
    assert error_of(client.post("/api/upload", data={"folder": "."}, files=one), 403) == "outside_workspace"
    assert client.post("/api/upload", data={"folder": "up"}, files=one).status_code == 200
    assert error_of(client.post("/api/upload", data={"folder": "up"}, files=one), 409) == "exists"
    big = [("files", ("big.png", b"x" * 20_000))]
    assert error_of(client.post("/api/upload", data={"folder": "up"}, files=big), 413) == "request_too_large"
    assert not (vessels_workspace / "up" / "big.png").exists()
    assert error_of(client.post("/api/upload", data={"folder": "up"}), 400) == "invalid_input"


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
