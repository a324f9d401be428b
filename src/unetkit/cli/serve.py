"""`unetkit serve`: the HTTP model service (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse

from unetkit.cli.arguments import add_command, add_model_args, check_at_least, options
from unetkit.errors import ConfigError

# create_app's keyword arguments, each given by the option of the same name
APP_OPTIONS = "backend device max_batch max_wait_ms max_queue timeout_s max_upload_mb max_pixels".split()


def register(subparsers) -> None:
    p = add_command(
        subparsers, "serve", "serve a checkpoint over HTTP (original REST protocol, /v1 API, web page)", run
    )
    add_model_args(
        p, device_help="torch device: auto (cuda:0 when CUDA is available, else cpu), cpu, cuda:1, ..."
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8000, help="port")
    p.add_argument("--max-batch", type=int, default=8, help="largest micro-batch (1 disables batching)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits to fill up")
    p.add_argument("--max-queue", type=int, default=64, help="requests admitted at once; beyond → 503")
    p.add_argument("--timeout-s", type=float, default=60.0, help="per-request deadline; beyond → 504")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image (width × height)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log verbosity",
    )


def run(args: argparse.Namespace) -> int:
    """Serve a model checkpoint over HTTP: POST /model/inference and /model/get_out_meta (the original
    protocol), POST /v1/predict and GET /v1/model, a web page at /, docs at /docs."""
    import uvicorn

    from unetkit.serving.app import create_app

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    check_at_least("--threads", args.threads, 0)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    app = create_app(args.model, **options(args, *APP_OPTIONS))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
