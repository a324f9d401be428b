"""unetkit.serving.launch: a server that cannot start is reported with its own output."""

from __future__ import annotations

import pytest

from unetkit.ports import free_port
from unetkit.serving.launch import serve_process


def test_a_server_that_exits_reports_its_output(tmp_path):
    with pytest.raises(RuntimeError, match="server exited with 2:(.|\n)*checkpoint folder not found"):
        with serve_process(tmp_path / "missing", startup_s=60):
            pass


def test_free_port_is_bindable():
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
