"""`unetkit project validate|info|render`: check, summarise and render Supervisely projects."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "project",
        help="validate, summarise or render a Supervisely project",
        description="Work with a Supervisely project folder (meta.json + datasets): validate it, summarise it, or "
        "render its annotations as masks and overlays. Run 'unetkit project SUBCOMMAND --help' for its options.",
    )
    sub = p.add_subparsers(dest="project_command", metavar="SUBCOMMAND", required=True)

    v = sub.add_parser(
        "validate",
        help="check a project; exit 2 listing every problem",
        description="Check a project against the Supervisely format: meta.json, every annotation and image "
        "header. Prints every problem (one line each) and exits with 2 when there is an error.",
    )
    v.add_argument("dir", metavar="DIR", help="project folder (contains meta.json)")
    v.add_argument("--deep", action="store_true", help="also decode every image completely (truncated files)")
    v.set_defaults(func=run_validate)

    i = sub.add_parser(
        "info",
        help="datasets, images, objects per class and shape, tags",
        description="Summarise a project: datasets, images, objects per class and shape, image and object tags.",
    )
    i.add_argument("dir", metavar="DIR")
    i.add_argument("--json", action="store_true", help="print the summary as JSON")
    i.set_defaults(func=run_info)

    r = sub.add_parser(
        "render",
        help="write class-index PNG masks and colour overlays",
        description="Render a project's annotations: OUT/<dataset>/masks/<stem>.png (class-index PNG, 0 = "
        "background), OUT/<dataset>/overlays/<stem>.jpg and the index table OUT/classes.json.",
    )
    r.add_argument("dir", metavar="DIR")
    r.add_argument("out", metavar="OUT", nargs="?", default=argparse.SUPPRESS, help="output folder")
    r.add_argument(
        "-o", "--out", "--output", metavar="OUT", help="output folder (instead of the OUT argument)"
    )
    r.add_argument("--alpha", type=float, default=0.5, help="overlay opacity")
    r.add_argument("--no-overlays", action="store_true", help="write only the masks")
    r.add_argument(
        "--channels",
        metavar="R,G,B",
        help="channels of many-channel images the overlays show, e.g. 3,2,1 (default: the first three)",
    )
    r.set_defaults(func=run_render)


def run_validate(args: argparse.Namespace) -> int:
    from unetkit.project import Project, validate_project

    problems = validate_project(args.dir, deep=args.deep)
    for problem in problems:
        print(f"{'warning' if problem.warning else 'error'}: {problem}", file=sys.stderr)
    errors = sum(not p.warning for p in problems)
    if errors:
        print(f"{errors} problem(s) found in {args.dir}", file=sys.stderr)
        return 2
    project = Project.read(args.dir)
    print(f"OK: {args.dir}: {len(project.datasets)} dataset(s), {len(project)} image(s), valid")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from unetkit.project.report import project_info

    info = project_info(args.dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"project {info['project']}: {info['images']} image(s) in {len(info['datasets'])} dataset(s)")
    print("datasets:")
    for ds in info["datasets"]:
        print(f"  {ds['name']:<30} {ds['images']:>6} images {ds['objects']:>8} objects")
    print("classes:")
    for c in info["classes"]:
        print(f"  {c['title']:<30} {c['shape']:<10} {c['color']}  {c['objects']:>8} objects")
    if info["objects_per_shape"]:
        print("objects per shape: " + ", ".join(f"{k}={v}" for k, v in info["objects_per_shape"].items()))
    if info["tag_metas"]:
        print("tags: " + ", ".join(f"{t['name']} ({t['value_type']})" for t in info["tag_metas"]))
    for key, title in (("image_tags", "image tags"), ("object_tags", "object tags")):
        if info[key]:
            print(f"{title}: " + ", ".join(f"{k}={v}" for k, v in info[key].items()))
    return 0


def run_render(args: argparse.Namespace) -> int:
    from unetkit.errors import ConfigError
    from unetkit.project.report import render_project

    if args.out is None:
        raise ConfigError("the output folder is missing: unetkit project render DIR OUT (or --out OUT)")
    if not 0.0 <= args.alpha <= 1.0:
        raise ConfigError(f"--alpha must be between 0 and 1, got {args.alpha}")
    channels = None
    if args.channels:
        try:
            channels = tuple(int(c) for c in args.channels.split(","))
        except ValueError:
            raise ConfigError(
                f"--channels {args.channels!r}: expected channel numbers such as 3,2,1"
            ) from None
        if len(channels) != 3 or min(channels) < 0:
            raise ConfigError(f"--channels {args.channels!r}: expected three channel numbers >= 0")
    summary = render_project(
        args.dir, args.out, alpha=args.alpha, overlays=not args.no_overlays, channels=channels
    )
    print(f"rendered {summary['items']} item(s) to {summary['out']} (index table in classes.json)")
    return 0
