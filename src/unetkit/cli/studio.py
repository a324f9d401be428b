"""`unetkit studio`: the local web app (pages + JSON API) over a workspace folder."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
from pathlib import Path

from unetkit.cli.arguments import add_command, check_at_least
from unetkit.errors import ConfigError, UnetkitError


def register(subparsers) -> None:
    p = add_command(subparsers, "studio", "the web app: projects, DTL, training, tasks, testing, models", run)
    p.add_argument(
        "workspace", nargs="?", default=".", metavar="WORKSPACE", help="workspace folder (created if missing)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--port", type=int, default=8765, help="port")
    p.add_argument(
        "--token",
        default=None,
        help="access token every request must carry (default: none on 127.0.0.1, a random one elsewhere)",
    )
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body")
    p.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="server log verbosity",
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    """Open a workspace folder in the browser: Supervisely projects, DTL graphs, training runs and models
    become pages; long work (import, DTL, train, auto, infer, evaluate, export, serve) runs as tasks (unetkit
    subprocesses) whose logs the pages show. The JSON API is documented at /docs.

    On an address other than 127.0.0.1 every request needs the access token (a random one unless --token):
    open the printed URL once and the browser keeps it."""
    import uvicorn

    from unetkit.studio.app import create_app

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    check_at_least("--max-upload-mb", args.max_upload_mb, 0.001)
    workspace = Path(args.workspace)
    if workspace.exists() and not workspace.is_dir():
        raise UnetkitError("the workspace must be a folder", file=workspace)
    token = args.token
    if token is None and not is_loopback(args.host):
        token = secrets.token_urlsafe(16)
    if token is not None and not token.strip():
        raise ConfigError("--token must not be empty")
    app = create_app(workspace, token=token, host=args.host, max_upload_mb=args.max_upload_mb)
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    shown = f"[{shown}]" if ":" in shown else shown
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"unetkit studio on {workspace.resolve()}: {url}  (API docs: /docs; Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
