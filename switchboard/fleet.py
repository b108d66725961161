"""The platform as a fleet on one machine, exactly as it runs on a cluster: a control-plane
process, N media processes and nginx in front (``infra/nginx/``: consistent hashing on the
call key), coordinated through Redis.

    switchboard fleet --media-processes 3     # or: make fleet

Each process is ``switchboard up`` with its plane set; a media process leaves the ring
before it drains (the fleet rewrites nginx's upstream and reloads it, as an endpoint
controller would), so no new call reaches it while its live calls finish.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from switchboard.demo.run import free_port, wait_ready

NGINX_DIR = Path(__file__).resolve().parents[1] / "infra" / "nginx"


class Process:
    """``switchboard up`` as its own process, with these ``SWITCHBOARD_*`` settings."""

    def __init__(self, data: Path, env: dict[str, str], **settings: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = data
        self.signalled = False
        data.mkdir(parents=True, exist_ok=True)
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
        environment |= env | {
            "SWITCHBOARD_DATA_DIR": str(data),
            "SWITCHBOARD_PORT": str(self.port),
        }
        environment |= {f"SWITCHBOARD_{k.upper()}": v for k, v in settings.items()}
        self.log_path = data / "platform.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "up"],
            env=environment,
            stdout=self._log,
            stderr=self._log,
            cwd=data,
            # Its own session: a Ctrl-C in the terminal reaches the fleet, which stops its
            # processes in order, not every process at once.
            start_new_session=True,
        )
        try:
            wait_ready(self.url, self.proc)
        except Exception:
            self.stop()
            raise

    def signal(self, sig: signal.Signals) -> None:
        self.signalled = True
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (a media process drains first; once: a second one stops it at once),
        then SIGKILL past ``timeout``."""
        if not self.signalled:
            self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        return self.proc.returncode


def nginx_binary() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


class Nginx:
    """nginx in front of the fleet, with the platform's routing (infra/nginx/)."""

    def __init__(self, data: Path, port: int, control: str, media: list[str]):
        self.data = data
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.control = control
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (data / "temp" / name).mkdir(parents=True, exist_ok=True)
        self.conf = data / "nginx.conf"
        self.access_log = data / "access.log"
        self.write(media)
        self._log = (data / "nginx.out").open("w")
        self.proc = subprocess.Popen(
            [nginx_binary(), "-c", str(self.conf), "-p", str(data)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_listening()

    def write(self, media: list[str]) -> None:
        """The configuration for this set of media processes (``host:port`` each)."""
        servers = "\n".join(f"        server {address};" for address in media)
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = self.data / "temp"
        self.conf.write_text(
            f"""{user}daemon off;
worker_processes 1;
pid {self.data / "nginx.pid"};
error_log {self.data / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {temp / "client_body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    include {NGINX_DIR / "call-routing.conf"};
    upstream switchboard_media {{
        hash $call_key consistent;
{servers}
    }}
    upstream switchboard_control {{
        server {self.control};
    }}
    server {{
        listen 127.0.0.1:{self.port};
        include {NGINX_DIR / "locations.conf"};
        access_log {self.access_log} switchboard;
    }}
}}
"""
        )

    def reload(self, media: list[str]) -> None:
        """A new ring: new connections follow it; established streams stay where they are."""
        self.write(media)
        self.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)  # the new workers take over

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {(self.data / 'error.log').read_text()}")
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)  # graceful: finishes what it serves
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


class Fleet:
    def __init__(
        self,
        data: Path,
        *,
        media_processes: int,
        redis_url: str,
        port: int | None = None,
        env: dict[str, str] | None = None,
        service_token: str | None = None,
    ):
        self.data = data
        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        # Every process hands out URLs through nginx, and checks signatures against them.
        self._env = (env or {}) | {
            "SWITCHBOARD_REDIS_URL": redis_url,
            "SWITCHBOARD_SERVICE_TOKEN": service_token or os.urandom(24).hex(),
            "SWITCHBOARD_PUBLIC_URL": self.url,
        }
        self.control = Process(data / "control", self._env, plane="control")
        self.media: list[Process] = []
        self.left: list[Process] = []  # drained or killed: out of the ring
        self._made = 0
        self.nginx: Nginx | None = None
        try:
            for _ in range(media_processes):
                self._start_media()
            self.nginx = Nginx(data / "nginx", port, _address(self.control), self._ring())
        except Exception:
            self.stop()
            raise

    def _start_media(self) -> Process:
        self._made += 1
        process = Process(
            self.data / f"media-{self._made}",
            self._env,
            plane="media",
            control_plane_url=self.control.url,
        )
        self.media.append(process)
        return process

    def _ring(self) -> list[str]:
        return [_address(p) for p in self.media]

    def add_media(self) -> Process:
        """Scale out: one more media process joins the ring."""
        process = self._start_media()
        assert self.nginx is not None
        self.nginx.reload(self._ring())
        return process

    def drain(self, process: Process) -> None:
        """Scale in: the process leaves the ring, then drains (SIGTERM); it exits on its own
        once its calls are over."""
        self.media.remove(process)
        self.left.append(process)
        assert self.nginx is not None
        self.nginx.reload(self._ring())
        process.signal(signal.SIGTERM)

    def kill(self, process: Process) -> None:
        """A process dies (SIGKILL); the ring learns it as a cluster would, late."""
        process.signal(signal.SIGKILL)
        process.proc.wait()
        self.media.remove(process)
        self.left.append(process)
        assert self.nginx is not None
        self.nginx.reload(self._ring())

    def stop(self, timeout: float = 15) -> None:
        """Media processes drain (up to ``timeout`` each, together), then the rest stops."""
        for process in self.media:
            process.signal(signal.SIGTERM)
        for process in self.media + self.left:
            process.stop(timeout)
        if self.nginx is not None:
            self.nginx.stop()
        self.control.stop()


def _address(process: Process) -> str:
    return f"127.0.0.1:{process.port}"
