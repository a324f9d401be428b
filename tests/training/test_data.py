import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_project, tiny_config
from unetkit.models.card import ClassMap
from unetkit.models.preprocess import normalize, resize_image, resize_labels
from unetkit.project import (
    Annotation,
    Label,
    ObjClass,
    Project,
    ProjectMeta,
    ProjectWriter,
    Rectangle,
    Tag,
    TagMeta,
)
from unetkit.project import rasterize as project_rasterize
from unetkit.training.augment import extract_window, random_window, tile_windows
from unetkit.training.config import parse_config
from unetkit.training.data import SegmentationDataset, ShardSampler, collate, split_by_tags, tile_refs


def _dataset(path, cfg, train=False, seed=0):
    project = Project.read(path)
    cfg = parse_config(cfg)
    splits = split_by_tags(project, cfg)
    sc = cfg.special_classes
    idx = ClassMap.for_project(project.meta.classes, sc.background, sc.neutral)
    refs = splits["train" if train else "val"]
    if cfg.unetkit.patch_sampling.mode == "random_crop" and not train:
        refs = tile_refs(refs, cfg.input_size.height, cfg.input_size.width)
    return SegmentationDataset(refs, project.meta, idx, cfg, train=train, seed=seed), idx, project


def test_sample_is_gt_rasterised_at_original_size_then_nearest_and_image_bicubic(tmp_path):
    meta = ProjectMeta(
        [ObjClass("a", "rectangle"), ObjClass("neutral", "rectangle")], [TagMeta("train"), TagMeta("val")]
    )
    w = ProjectWriter(tmp_path / "p", meta)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 24, 3), dtype=np.uint8)
    labels = [Label("a", Rectangle(3, 5, 17, 30)), Label("neutral", Rectangle(0, 0, 4, 4))]
    for tag in ("train", "val"):
        w.add_item("ds", f"{tag}.png", img, Annotation(40, 24, labels, [Tag(tag)]))
    w.write_meta()
    ds, idx, project = _dataset(
        tmp_path / "p", {"input_size": {"width": 16, "height": 32}, "epochs": 1, "val_every": 1}
    )
    s = ds[(0, 0)]
    ann = next(project.items()).read_annotation(project.meta)
    gt = project_rasterize(ann, {"bg": 0, "a": 1, "neutral": 2})
    assert torch.equal(s["target"], torch.from_numpy(resize_labels(gt, 16, 32).astype(np.int64)))
    assert np.allclose(s["image"].numpy(), normalize(resize_image(img, 16, 32, "bicubic")))
    assert s["target"].dtype == torch.int64 and s["image"].shape == (3, 32, 16)
    assert idx.neutral_index == 2 and (s["target"] == 2).any()


def test_unknown_class_is_the_original_missing_mapping_error(tmp_path):
    proj = make_project(tmp_path / "p", n_train=1, n_val=1)
    ds, _, _ = _dataset(proj, tiny_config())
    ds.class_map.pop("fg")
    with pytest.raises(Exception, match=r"Missing class mapping \(title to index\). Class fg."):
        ds._sample(0, np.random.default_rng(0))


def test_shards_of_two_ranks_make_the_single_process_batches():
    one = ShardSampler(10, shuffle=True, seed=3, batch_size=4)
    ranks = [ShardSampler(10, shuffle=True, seed=3, rank=r, world=2, batch_size=2) for r in range(2)]
    for epoch in (0, 1):
        for s in (one, *ranks):
            s.epoch = epoch
        a = [i for i, _ in one]
        b0, b1 = ([i for i, _ in s] for s in ranks)
        for k in range(2):
            assert sorted(a[4 * k : 4 * k + 4]) == sorted(b0[2 * k : 2 * k + 2] + b1[2 * k : 2 * k + 2])
    assert [i for i, _ in one] != list(range(10))
    one.start_batch = 2
    assert len(one) == 2 and one.batches_per_epoch() == 3


def test_samples_do_not_depend_on_workers_and_augmentation_is_seeded(tmp_path):
    proj = make_project(tmp_path / "p", n_train=4, n_val=1)
    aug = {
        "hflip": 0.5,
        "vflip": 0.5,
        "rot90": 0.5,
        "scale": [0.7, 1.3],
        "brightness": 0.2,
        "contrast": 0.2,
        "gamma": 0.2,
    }
    cfg = tiny_config(unetkit={"augment": aug})
    ds, _, _ = _dataset(proj, cfg, train=True)
    a = collate([ds[(i, 1)] for i in range(4)])
    b = collate([ds[(i, 1)] for i in range(4)])
    c = collate([ds[(i, 2)] for i in range(4)])
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["image"], c["image"])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, sampler=[(i, 1) for i in range(4)], num_workers=2,
                                         collate_fn=collate)  # fmt: skip
    w = next(iter(loader))
    assert torch.equal(w["image"], a["image"]) and torch.equal(w["target"], a["target"])


def test_patch_sampling_crops_full_resolution_and_validation_tiles(tmp_path):
    proj = make_project(tmp_path / "p", n_train=2, n_val=1, size=48)
    cfg = tiny_config(input_size={"width": 32, "height": 32},
                      unetkit={"patch_sampling": {"mode": "random_crop", "foreground_prob": 1.0}})  # fmt: skip
    ds, idx, _ = _dataset(proj, cfg, train=False)
    assert len(ds) == 4  # 48×48 → 2×2 tiles of 32, padded with neutral
    tiles = [ds[(i, 0)]["target"] for i in range(4)]
    assert (tiles[3][16:, 16:] == idx.neutral_index).all() and (tiles[0] != idx.neutral_index).all()
    tr, _, _ = _dataset(proj, cfg, train=True)
    for i in range(2):
        t = tr[(i, 0)]["target"]
        assert t.shape == (32, 32) and (t == 1).any()  # centred on foreground


def test_window_helpers():
    img = np.arange(5 * 4 * 3).reshape(5, 4, 3).astype(np.uint8)
    lbl = np.ones((5, 4), np.uint8)
    wi, wl = extract_window(img, lbl, -1, 2, 3, 3, 9)
    assert wl.tolist() == [[9, 9, 9], [1, 1, 9], [1, 1, 9]] and (wi[0] == 0).all()
    assert tile_windows(5, 4, 2, 4) == [(0, 0), (2, 0), (4, 0)]
    top, left = random_window(lbl, 3, 3, np.random.default_rng(0))
    assert 0 <= top <= 2 and 0 <= left <= 1


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), world=st.integers(1, 4), batch=st.integers(1, 5), seed=st.integers(0, 9))
def test_sharded_epoch_covers_every_sample_and_steps_match_one_process(n, world, batch, seed):
    ranks = [
        ShardSampler(n, shuffle=True, seed=seed, rank=r, world=world, batch_size=batch) for r in range(world)
    ]
    shards = [[i for i, _ in s] for s in ranks]
    assert len({len(s) for s in shards}) == 1  # equal length: no rank waits at a collective
    assert set().union(*map(set, shards)) == set(range(n))
    one = [i for i, _ in ShardSampler(n, shuffle=True, seed=seed, batch_size=batch * world)]
    for k in range(min(len(shards[0]), n // world) // batch):
        step = sorted(i for s in shards for i in s[k * batch : (k + 1) * batch])
        assert step == sorted(one[k * batch * world : (k + 1) * batch * world])
