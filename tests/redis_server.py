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
from collections.abc import Callable
from pathlib import Path

import pytest

BINARY = shutil.which("redis-server") or next(
    (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
)


_LINUX = sys.platform.startswith("linux")
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if _LINUX else None
_PR_SET_PDEATHSIG = 1


def _dying_with(parent: int) -> Callable[[], None]:
    """What the child runs before exec: Linux kills it when ``parent`` dies, however it dies.

    A run stopped from outside (SIGKILL, a CI timeout) never reaches the fixture's cleanup,
    and would leave its servers running. The kernel watches the thread that started the
    server: fixtures start them on the worker's main thread. Under pytest-xdist a killed
    controller leaves its workers to finish their running test (pytest-timeout bounds it),
    and their servers with them. Only ``prctl`` runs in the child (resolved beforehand: no
    loading of libraries between fork and exec); a parent gone before it took effect ends
    the child at once.
    """

    def arm() -> None:
        assert _PRCTL is not None
        if _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL) != 0 or os.getppid() != parent:
            os._exit(1)

    return arm


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
            preexec_fn=_dying_with(os.getpid()) if _LINUX else None,
        )
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:  # the port was taken meanwhile, by another run
                raise RuntimeError(f"redis-server exited at start ({self.proc.returncode})")
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
