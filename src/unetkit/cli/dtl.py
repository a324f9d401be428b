"""`unetkit dtl check|run|draw`: validate, run and draw DTL graphs (the logic lives in unetkit.dtl)."""

from __future__ import annotations

import logging
import sys

from unetkit.cli.arguments import add_engine_args, check_engine_args
from unetkit.errors import ConfigError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "dtl",
        help="Data Transformation Language graphs: check, run, draw",
        description="Supervisely DTL (Data Transformation Language) graphs: JSON lists of layers that read "
        "projects, transform images and annotations, and save a new project. Run 'unetkit dtl SUBCOMMAND --help' "
        "for its options.",
    )
    sub = parser.add_subparsers(dest="dtl_command", metavar="SUBCOMMAND", required=True)

    check = sub.add_parser(
        "check",
        help="validate a graph and print the output meta summary",
        description="Validate a DTL graph; with --input, also compute and print the output classes and tags.",
    )
    _add_graph_args(check, False, "input projects (needed to compute the output meta)")
    check.set_defaults(func=cmd_check)

    run = sub.add_parser(
        "run",
        help="run a graph and write a new project",
        description="Run a DTL graph on the input projects and write its output project (identical for any "
        "number of workers and on Ray). Exit code 1 when images were skipped.",
    )
    _add_graph_args(
        run, True, "input projects; a data layer src 'project/dataset' names a project by folder name"
    )
    run.add_argument("-o", "--out", "--output", required=True, help="output project folder (new or empty)")
    run.add_argument("--seed", type=int, default=None, help="make the run reproducible")
    run.add_argument("--workers", type=int, default=1, help="worker processes (output identical for any N)")
    add_engine_args(
        run, "local: worker processes here; ray: tasks on a Ray cluster (same output, see docs/scale.md)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    draw = sub.add_parser(
        "draw",
        help="draw the graph as .svg, .png or .dot",
        description="Draw a DTL graph (layers and the data flowing between them) as .svg, .png or .dot.",
    )
    draw.add_argument("graph", help="graph JSON file")
    draw.add_argument("-o", "--out", "--output", required=True, help="FILE.svg | FILE.png | FILE.dot")
    draw.add_argument(
        "--engine",
        choices=("auto", "graphviz", "matplotlib"),
        default="auto",
        help="renderer for svg/png (auto: graphviz when installed)",
    )
    draw.set_defaults(func=cmd_draw)


def _add_graph_args(parser, inputs_required: bool, inputs_help: str) -> None:
    parser.add_argument("graph", help="graph JSON file")
    parser.add_argument(
        "--input", nargs="+", required=inputs_required, metavar="PROJECT_DIR", help=inputs_help
    )


def _meta_summary(meta) -> list[str]:
    lines = [f"output classes ({len(meta.classes)}):"]
    lines += [f"  {c.title:<24} {c.shape:<10} {c.color}" for c in meta.classes]
    lines.append(f"output tags ({len(meta.tag_metas)}):")
    lines += [f"  {t.name:<24} {t.value_type}" for t in meta.tag_metas]
    return lines


def cmd_check(args) -> int:
    from unetkit.dtl.executor import load_inputs
    from unetkit.dtl.graph import load_graph

    metas = None
    if args.input:
        metas = {p.name: p.meta for p in load_inputs(args.input)}
    graph = load_graph(args.graph, metas)
    save = graph.save_layer
    print(
        f"graph OK: {len(graph.layers)} layers, data from {', '.join(graph.projects)}, "
        f"saved by layer {save.index} ({save.action}) as {save.dst[0]!r}"
    )
    if graph.output_meta is None:
        print("output meta: pass --input PROJECT_DIR... to compute it")
    else:
        print("\n".join(_meta_summary(graph.output_meta)))
    return 0


def cmd_run(args) -> int:
    from unetkit.dtl.executor import load_inputs, run_graph
    from unetkit.dtl.graph import load_graph

    if args.workers < 1:
        raise ConfigError("--workers must be >= 1")
    if args.seed is not None and args.seed < 0:
        raise ConfigError("--seed must be >= 0")
    if args.engine == "ray" and args.workers != 1:
        raise ConfigError("--workers is for --engine local; on Ray every CPU of the cluster works")
    check_engine_args(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    projects = load_inputs(args.input)
    graph = load_graph(args.graph, {p.name: p.meta for p in projects})
    report = run_graph(
        graph,
        projects,
        args.out,
        seed=args.seed,
        workers=args.workers,
        progress=not args.no_progress and sys.stderr.isatty(),
        engine=args.engine,
        address=args.address,
    )
    where = (
        f"on Ray: {report.nodes} node(s), {report.workers} CPU(s)"
        if report.engine == "ray"
        else f"{report.workers} worker(s)"
    )
    print(
        f"DTL finished: {report.written} items written to {report.out_dir} from {report.inputs} input images "
        f"in {report.seconds:.1f} s ({where}); {len(report.skipped)} skipped"
        + (
            f"; {report.dropped_objects} object(s) dropped (geometry a layer cannot transform)"
            if report.dropped_objects
            else ""
        )
    )
    for ds, n in sorted(report.per_dataset.items()):
        print(f"  dataset {ds}: {n}")
    for node, n in sorted(report.per_node.items()):
        print(f"  Ray node {node[:8]}: {n} input images")
    for skipped in report.skipped:
        print(f"  skipped {skipped}")
    return 1 if report.skipped else 0


def cmd_draw(args) -> int:
    from unetkit.dtl.draw import draw_graph
    from unetkit.dtl.graph import load_graph

    graph = load_graph(args.graph)
    used = draw_graph(graph, args.out, engine=args.engine)
    print(f"wrote {args.out} ({used})")
    return 0
