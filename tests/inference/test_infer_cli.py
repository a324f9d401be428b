"""`unetkit infer` and the project runner: the docs' config unchanged, every example mode, backends."""

import json
import shutil
from pathlib import Path

import pytest

from unetkit.cli.main import main
from unetkit.inference import InferenceConfig, Predictor, parse_config
from unetkit.inference.batch import infer_project
from unetkit.inference.modes import build_runner
from unetkit.project import Project, validate_project

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def read_all(path):
    project = Project.read(path)
    return project, {(it.dataset, it.name): it.read_annotation(project.meta) for it in project.items()}


def test_docs_inference_config_runs_unchanged(chase_project, random_ckpt, tmp_path, capsys):
    out = tmp_path / "inf_01"
    rc = main(["infer", "--model", str(random_ckpt), "--project", str(chase_project),
               "--config", str(EXAMPLES / "inference.json"), "--out", str(out)])  # fmt: skip
    assert rc == 0
    assert "model applied: 3 images" in capsys.readouterr().out
    assert validate_project(out) == []
    assert main(["project", "validate", str(out)]) == 0
    src, src_anns = read_all(chase_project)
    dst, dst_anns = read_all(out)
    assert [c.title for c in dst.meta.classes] == ["vessel", "box", "bg_unet", "vessel_unet"]
    assert dst_anns.keys() == src_anns.keys()
    predictor = Predictor.from_checkpoint(random_ckpt)
    for item in src.items():
        ann = dst_anns[(item.dataset, item.name)]
        assert ann.labels[:2] == src_anns[(item.dataset, item.name)].labels
        assert {lbl.class_title for lbl in ann.labels[2:]} <= {"bg_unet", "vessel_unet"}
        out_item = next(i for i in dst.items() if i.name == item.name)
        assert out_item.image_path.read_bytes() == item.image_path.read_bytes()
        expected = build_runner(None, src.meta, predictor).apply(
            item.read_image(), src_anns[(item.dataset, item.name)]
        )
        assert ann.to_json() == expected.to_json()


def test_runner_batches_equal_single_images(chase_project, random_ckpt, tmp_path):
    predictor = Predictor.from_checkpoint(random_ckpt)
    config = parse_config({"model": {}, "mode": {"name": "bboxes", "save": True, "save_probabilities": True,
                                                  "model_classes": {"add_suffix": "_unet"}}})  # fmt: skip
    stats = infer_project(
        predictor, chase_project, tmp_path / "o", config, workers=2, batch_size=3, progress=False
    )
    assert stats.images == 3 and stats.images_per_second > 0
    src, src_anns = read_all(chase_project)
    _, anns = read_all(tmp_path / "o")
    mode = build_runner(config, src.meta, predictor)
    for item in src.items():
        single = mode.apply(item.read_image(), src_anns[(item.dataset, item.name)])
        assert anns[(item.dataset, item.name)].to_json() == single.to_json()
    assert validate_project(tmp_path / "o") == []


@pytest.mark.parametrize("name", ["full_image", "roi", "bboxes"])
def test_example_configs_run(name, chase_project, random_ckpt, tmp_path):
    out = tmp_path / name
    assert main(["infer", "--model", str(random_ckpt), "--project", str(chase_project), "--config",
                 str(EXAMPLES / f"inference_{name}.json"), "--out", str(out), "--batch-size", "2"]) == 0  # fmt: skip
    assert validate_project(out) == []
    meta = json.loads((out / "meta.json").read_text())
    extra = {"full_image": ["vessel_unet"], "roi": ["bg_unet", "vessel_unet", "inference_roi"],
             "bboxes": ["bg_unet", "vessel_unet", "vessel_input_bbox", "box_input_bbox"]}[name]  # fmt: skip
    assert [c["title"] for c in meta["classes"]] == ["vessel", "box", *extra]


def test_sliding_window_example(chase_project, random_ckpt, tmp_path, capsys):
    import cv2

    from unetkit.project import ProjectWriter

    # the example's 256×256 windows do not fit the 100×96 images: one clear error, no output left behind
    out = tmp_path / "sw"
    args = ["infer", "--model", str(random_ckpt), "--config", str(EXAMPLES / "inference_sliding_window.json")]
    assert main([*args, "--project", str(chase_project), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "window is larger than source" in err and "Image_01L.png" in err and "$.mode.window" in err
    assert not out.exists() and not list(tmp_path.glob(".sw*"))
    # a bigger image runs
    src = Project.read(chase_project)
    item = next(iter(src.items()))
    big = tmp_path / "big"
    writer = ProjectWriter(big, src.meta)
    image = cv2.resize(item.read_image(), (300, 280), interpolation=cv2.INTER_CUBIC)
    from unetkit.project import Annotation

    writer.add_item("ds0", "big.png", image, Annotation(280, 300))
    assert main([*args, "--project", str(big), "--out", str(out)]) == 0
    assert validate_project(out) == []
    _, anns = read_all(out)
    ann = anns[("ds0", "big.png")]
    assert sum(lbl.geometry.area() for lbl in ann.labels) == 280 * 300


def test_onnxruntime_backend_same_annotations(chase_project, random_ckpt, tmp_path):
    base = ["infer", "--model", str(random_ckpt), "--project", str(chase_project)]
    assert main([*base, "--out", str(tmp_path / "t")]) == 0
    assert main([*base, "--out", str(tmp_path / "o"), "--backend", "onnxruntime"]) == 0
    _, a = read_all(tmp_path / "t")
    _, b = read_all(tmp_path / "o")
    assert {k: v.to_json()["objects"] for k, v in a.items()} == {
        k: v.to_json()["objects"] for k, v in b.items()
    }


def test_tta_amp_flags_and_refusals(chase_project, random_ckpt, tmp_path, capsys):
    base = ["infer", "--model", str(random_ckpt), "--project", str(chase_project)]
    assert (
        main([*base, "--out", str(tmp_path / "x"), "--tta", "--amp", "--workers", "1", "--batch-size", "1"])
        == 0
    )
    assert validate_project(tmp_path / "x") == []
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x")]) == 2  # not empty
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "y"), "--workers", "0"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"gpu_devices": [0]}, "mode": {"name": "full_image"}}))
    assert main([*base, "--out", str(tmp_path / "z"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json: $.model.gpu_devices: unknown key 'gpu_devices' (did you mean 'gpu_device'?)" in err
    # a renamed class that exists is reported at start, naming the config file
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({"model": {}, "mode": {"name": "roi"}}))
    assert main([*base, "--out", str(tmp_path / "w"), "--config", str(dup)]) == 2
    assert "dup.json: $.mode.model_classes.add_suffix" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_input_project_untouched(chase_project, random_ckpt, tmp_path):
    before = {p: p.read_bytes() for p in Path(chase_project).rglob("*") if p.is_file()}
    infer_project(
        Predictor.from_checkpoint(random_ckpt),
        chase_project,
        tmp_path / "o",
        InferenceConfig(),
        progress=False,
    )
    after = {p: p.read_bytes() for p in Path(chase_project).rglob("*") if p.is_file()}
    assert before == after
    shutil.rmtree(tmp_path / "o")


def test_annotation_size_mismatch_names_the_file(chase_project, random_ckpt, tmp_path, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(chase_project, bad)
    ann_path = next((bad / "ds0" / "ann").glob("*.json"))
    doc = json.loads(ann_path.read_text())
    doc["size"] = {"height": 50, "width": 100}
    doc["objects"] = []
    ann_path.write_text(json.dumps(doc))
    assert (
        main(["infer", "--model", str(random_ckpt), "--project", str(bad), "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert ann_path.name in err and "$.size" in err and "differs from the image size" in err
    assert not (tmp_path / "o").exists()


def test_bboxes_on_a_supervisely_sample_project(sly_samples_dir, vessel_ckpt, tmp_path):
    """Real Supervisely project (lemons/kiwis bitmaps): one model bitmap exactly over each padded lemon box."""
    src = sly_samples_dir / "lemons_annotated"
    cfg = tmp_path / "bboxes.json"
    cfg.write_text(json.dumps({"model": {"gpu_device": 0}, "mode": {
        "name": "bboxes", "from_classes": ["lemon"], "padding": {"left": "4px", "top": "10%", "right": "0px", "bottom": "0%"},
        "save": True, "model_classes": {"save_classes": ["vessel"], "add_suffix": "_unet"}}}))  # fmt: skip
    out = tmp_path / "out"
    assert main(["infer", "--model", str(vessel_ckpt), "--project", str(src), "--config", str(cfg), "--out", str(out),
                 "--batch-size", "3"]) == 0  # fmt: skip
    assert validate_project(out) == []
    project, anns = read_all(src)
    dst, out_anns = read_all(out)
    assert [c.title for c in dst.meta.classes] == ["kiwi", "lemon", "vessel_unet", "lemon_input_bbox"]
    for key, ann in anns.items():
        expected = []
        for lbl in ann.labels:
            if lbl.class_title == "lemon":
                b = lbl.geometry.bbox()
                h = b.bottom - b.top + 1
                padded = (max(b.left - 4, 0), max(b.top - int(h * 10 / 100), 0), b.right, b.bottom)
                expected += [("vessel_unet", padded), ("lemon_input_bbox", padded)]
            expected.append((lbl.class_title, None))
        got = [(lbl.class_title, None if lbl.class_title in ("kiwi", "lemon") else
                (lambda r: (r.left, r.top, r.right, r.bottom))(lbl.geometry.bbox())) for lbl in out_anns[key].labels]  # fmt: skip
        assert got == expected
        kept = [lbl for lbl in out_anns[key].labels if lbl.class_title in ("kiwi", "lemon")]
        assert kept == ann.labels  # source objects unchanged, in order
