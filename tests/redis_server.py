"""A throwaway ``redis-server`` on a free loopback port, for the shared-limiter tests.

Debian's ``redis-server`` package provides the binary. Without it the tests that need it
skip, unless ``SARVAM_ASYNC_REQUIRE_EXTRAS`` is set (CI sets it): then they fail.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BINARY = shutil.which("redis-server") or next(
    (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
)


def _die_with_parent() -> None:
    """In the child, before exec: Linux kills it when the test process dies, however it dies.

    A run stopped from outside (SIGKILL, a CI timeout) never reaches the fixture's cleanup,
    and would leave its servers running. The fixtures start servers on the main thread,
    whose end is what the kernel watches.
    """
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process: ``url``, and ``kill``/``start``/``pause``/``resume``."""

    def __init__(self, folder: Path) -> None:
        if BINARY is None:
            message = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get("SARVAM_ASYNC_REQUIRE_EXTRAS"):
                pytest.fail(message)
            pytest.skip(message)
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server (again, on the same port) and wait until it answers."""
        assert BINARY is not None
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        args = [item for name, value in options.items() for item in (f"--{name}", value)]
        self.proc = subprocess.Popen(
            [BINARY, *args, "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        """Stop the server at once (SIGKILL): a crash, not a shutdown."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it accepts connections and never answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
