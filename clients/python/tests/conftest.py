"""Runs the real omsd for the tests.

The binary: `OMSD_BIN` when set (CI points it at the debug build the Rust tests made), else
`cargo build --bin omsd` in the repository and `<target>/debug/omsd`, as tests/src/lib.rs does.
Each server gets free loopback ports and its own temporary data directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 30.0


def omsd_binary() -> Path:
    env = os.environ.get("OMSD_BIN")
    if env:
        path = Path(env)
        if not path.is_file():
            raise RuntimeError(f"OMSD_BIN={env} is not a file")
        return path
    cargo = os.environ.get("CARGO", "cargo")
    subprocess.run([cargo, "build", "--bin", "omsd"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "debug" / "omsd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Omsd:
    """A running omsd on fresh loopback ports."""

    def __init__(self, binary: Path, args: List[str], data_dir: Optional[Path] = None) -> None:
        self.binary = binary
        self.args = args
        self._tmp = tempfile.TemporaryDirectory(prefix="omsd-py-")
        self.data_dir = data_dir or Path(self._tmp.name) / "data"
        self.log_path = Path(self._tmp.name) / "omsd.log"
        while True:
            self.port, self.admin_port = free_port(), free_port()
            if self.port != self.admin_port:
                break
        self.process: Optional[subprocess.Popen] = None
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                str(self.binary),
                "--listen",
                self.address,
                "--admin-listen",
                f"127.0.0.1:{self.admin_port}",
                "--http-listen",
                "127.0.0.1:0",
                "--console-listen",
                "127.0.0.1:0",
                "--data-dir",
                str(self.data_dir),
                *self.args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"omsd exited with {self.process.returncode} before ready:\n{self.stderr()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"omsd not ready after {READY_TIMEOUT_S} s:\n{self.stderr()}")
            time.sleep(0.05)

    def stderr(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM and wait (a clean shutdown), SIGKILL after 30 s."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.kill()
        self._tmp.cleanup()


@pytest.fixture(scope="session")
def omsd_bin() -> Path:
    return omsd_binary()


@pytest.fixture
def demo(omsd_bin: Path) -> Iterator[Omsd]:
    """A fresh `omsd --demo` (SKUs TSHIRT-RED-XL, MUG-WHT, ..., kit GIFT-BOX; warehouses SH, BJ)."""
    server = Omsd(omsd_bin, ["--demo"])
    yield server
    server.close()


@pytest.fixture
def make_omsd(omsd_bin: Path) -> Iterator:
    """Start servers with extra arguments: `make_omsd("--demo", "--config", path)`."""
    servers: List[Omsd] = []

    def make(*args: str, data_dir: Optional[Path] = None) -> Omsd:
        server = Omsd(omsd_bin, list(args), data_dir)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def openssl_certificate(directory: Path, name: str = "localhost") -> tuple:
    """A self-signed certificate for `name` and 127.0.0.1 (cert.pem, key.pem), by the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command (Debian package openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name},IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
