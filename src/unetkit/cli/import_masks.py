"""`unetkit import masks|mvtec`: build a Supervisely project from image + mask folders."""

from __future__ import annotations

import argparse

from unetkit.cli.arguments import add_command, options
from unetkit.errors import ConfigError
from unetkit.project.mask_options import parse_classes, parse_value_map, parse_values


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "import",
        help="import image + mask folders into a Supervisely project",
        description="Build a new Supervisely project from image and mask folders. Run 'unetkit import "
        "SUBCOMMAND --help' for its options.",
    )
    sub = p.add_subparsers(dest="import_command", metavar="SUBCOMMAND", required=True)

    m = add_command(sub, "masks", "images + masks (CHASE DB1, 0/255, class values)", run_masks)
    m.add_argument("--images", metavar="DIR", help="image folder (not with --split-csv)")
    m.add_argument(
        "--masks", metavar="DIR", help="mask folder (may be the image folder; not with --split-csv)"
    )
    m.add_argument(
        "--split-csv",
        default=None,
        metavar="FILE",
        help="pair by a csv's image,mask columns (paths relative to its folder) and tag each image with its "
        "split column (train/val/test), instead of --images/--masks",
    )
    m.add_argument(
        "-o",
        "--out",
        "--output",
        required=True,
        metavar="DIR",
        help="new project folder (must not exist or be empty)",
    )
    m.add_argument(
        "--class", dest="class_name", default="vessel", metavar="NAME", help="class of binary masks"
    )
    m.add_argument("--mask-suffix", default="", metavar="S", help="mask name = <image stem><S>.<ext>")
    m.add_argument(
        "--match",
        default=None,
        metavar="REGEX",
        help="pair by the id the first group of REGEX finds in image, mask and FOV names (DRIVE: '^(\\d+)_')",
    )
    m.add_argument(
        "--fov",
        default=None,
        metavar="DIR",
        help="field-of-view masks: pixels outside (value 0) become the neutral class, ignored by train/evaluate",
    )
    m.add_argument("--fov-suffix", default="", metavar="S", help="FOV mask name = <image stem><S>.<ext>")
    m.add_argument("--neutral", default="neutral", metavar="NAME", help="class of pixels outside the FOV")
    m.add_argument(
        "--value-map",
        default=None,
        metavar="V=CLASS,...",
        help="value->class table, e.g. 1=road,2=car (0 = bg)",
    )
    m.add_argument(
        "--classes",
        default=None,
        metavar="NAME,...",
        help="class-index masks: value i is the i-th name (from 0; an empty name = background), "
        "e.g. Sky,Building,Pole",
    )
    m.add_argument(
        "--ignore",
        default=None,
        metavar="V,...",
        help="mask values whose pixels become the neutral class (--neutral), ignored by train/evaluate",
    )
    m.add_argument(
        "--threshold",
        type=int,
        default=None,
        metavar="T",
        help="binary masks: foreground where value >= T (1..255; a 1-bit mask's 1 counts as 255); without "
        "it any value > 0 of a 0/v mask, and soft-edged 8-bit masks are cut at 128 with a warning",
    )
    m.add_argument(
        "--instances",
        action="store_true",
        help="each mask is a folder of binary masks, one per object (<masks>/<image stem>/*.png); "
        "their union is class --class",
    )
    m.add_argument("--tag", default=None, metavar="T", help="tag every image with T (e.g. train)")
    m.add_argument(
        "--split", type=float, default=None, metavar="RATIO", help="tag RATIO of images train, rest val"
    )
    m.add_argument("--seed", type=int, default=0, help="seed of the --split shuffle")
    m.add_argument("--dataset", default="ds0", help="dataset name")

    v = sub.add_parser(
        "mvtec",
        help="one MVTec AD category (train/good, test/<defect>, ground_truth)",
        description="Import one MVTec AD category folder: train/good becomes dataset train, test/<defect> "
        "dataset test with the masks of ground_truth/<defect>; images are tagged train/test and with their defect.",
    )
    v.add_argument("category", metavar="CATEGORY_DIR")
    v.add_argument("-o", "--out", "--output", required=True, metavar="DIR", help="new project folder")
    v.add_argument(
        "--class", dest="class_name", default="defect", metavar="NAME", help="class of defect pixels"
    )
    v.add_argument("--per-defect-classes", action="store_true", help="one class per defect type")
    v.add_argument("--no-split-tags", action="store_true", help="do not tag images train/test")
    v.set_defaults(func=run_mvtec)


def run_masks(args: argparse.Namespace) -> int:
    """Import images with one mask per image: the mask of X.jpg is X<suffix>.<ext>, or with --match the mask
    whose name holds the same id (first group of REGEX), or the pairs of --split-csv (whose split column tags
    each image). Masks may be PNG, GIF, TIFF, BMP, JPEG, palette, 1-bit, 0/255 or class values. Binary masks
    (0 and one other value) become class --class, soft-edged ones are cut by --threshold (default: 128, with a
    warning); class-index masks need --classes or --value-map; --ignore values and, with --fov, the pixels
    outside the field of view become the neutral class. --instances: a folder of masks per image, one per
    object. CHASE DB1 (images and *_1stHO.png masks in one folder) is recognised automatically."""
    from unetkit.project.imports import import_masks

    if args.classes and args.value_map:
        raise ConfigError("give --classes or --value-map, not both")
    if args.split_csv is None and (args.images is None or args.masks is None):
        raise ConfigError("give --images DIR and --masks DIR, or --split-csv FILE")
    if args.split_csv is not None and (args.images is not None or args.masks is not None):
        raise ConfigError("--split-csv names the images and masks itself: no --images/--masks")
    value_map = parse_value_map(args.value_map) if args.value_map else None
    if args.classes:
        value_map = parse_classes(args.classes)
    ignore = parse_values(args.ignore, "--ignore") if args.ignore else ()
    names = ("mask_suffix", "tag", "split", "seed", "dataset", "match", "fov_suffix", "neutral")
    project = import_masks(
        args.images,
        args.masks,
        args.out,
        args.class_name,
        value_map=value_map,
        fov_dir=args.fov,
        ignore=ignore,
        **options(args, *names, "threshold", "instances", "split_csv"),
    )
    print(f"imported {len(project)} image(s) into {project.path}")
    return 0


def run_mvtec(args: argparse.Namespace) -> int:
    from unetkit.project.imports import import_mvtec

    project = import_mvtec(
        args.category,
        args.out,
        args.class_name,
        per_defect_classes=args.per_defect_classes,
        tag_splits=not args.no_split_tags,
    )
    print(f"imported {len(project)} image(s) into {project.path}")
    return 0
