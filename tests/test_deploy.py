"""The production layout in deploy/ (issue 21, part 5): nginx's own checker accepts the proxy's
configuration, and the systemd units run what the Procfile runs, with their health checks.

Needs Debian's nginx (`make test-deps` installs it) and runs it only as `nginx -t`, with every
path under a temporary directory: no daemon, no root-owned file. No database."""

import re
import shlex
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NGINX = "/usr/sbin/nginx"
SITE = DEPLOY / "nginx" / "clinic.conf"
SYSTEMD = DEPLOY / "systemd"
HEALTH = SYSTEMD / "clinic-health"

pytestmark = pytest.mark.deploy

# The deployment paths the site names, and where the test puts them.
PATHS = {"/etc/clinic/tls/": "tls/", "/var/log/nginx/": "log/", "/srv/clinic/": "srv/"}
FILE_DIRECTIVES = (
    "ssl_certificate",
    "ssl_certificate_key",
    "ssl_trusted_certificate",
    "ssl_dhparam",
    "access_log",
    "error_log",
    "alias",
    "root",
    "include",
)


def _nginx() -> str:
    if not Path(NGINX).exists():
        pytest.fail(f"{NGINX} is missing: run `make test-deps` (apt-get install nginx)")
    return NGINX


def _site_in(tmp: Path) -> Path:
    text = SITE.read_text()
    for directive in FILE_DIRECTIVES:
        for match in re.finditer(rf"^\s*{directive}\s+(\S+?);?\s", text, re.MULTILINE):
            value = match.group(1)
            assert value == "off" or value.startswith(tuple(PATHS)), (
                f"{directive} {value}: a path the test does not map (PATHS)"
            )
    for deployed, local in PATHS.items():
        (tmp / local).mkdir(exist_ok=True)
        text = text.replace(deployed, f"{tmp}/{local}")
    site = tmp / "clinic.conf"
    site.write_text(text)
    return site


def _self_signed(tmp: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=clinic.example",
            "-addext",
            "subjectAltName=DNS:clinic.example,DNS:*.clinic.example",
            "-keyout",
            str(tmp / "tls" / "privkey.pem"),
            "-out",
            str(tmp / "tls" / "fullchain.pem"),
        ],
        check=True,
        capture_output=True,
    )


def _wrapper(tmp: Path, site: Path) -> Path:
    """The main configuration Debian's /etc/nginx/nginx.conf would be, inside `tmp`."""
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    config = tmp / "nginx.conf"
    config.write_text(
        "events {}\n"
        "http {\n"
        f"{temp}\n"
        f"    uwsgi_temp_path {tmp}/uwsgi;\n"
        f"    scgi_temp_path {tmp}/scgi;\n"
        f"    access_log {tmp}/log/access.log;\n"
        f"    include {site};\n"
        "}\n"
    )
    return config


def _nginx_test(tmp: Path, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            _nginx(),
            "-t",
            "-p",
            f"{tmp}/",
            "-c",
            str(config),
            "-g",
            f"pid {tmp}/nginx.pid; error_log {tmp}/log/error.log;",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_nginx_accepts_the_proxy_configuration(tmp_path):
    site = _site_in(tmp_path)
    _self_signed(tmp_path)
    checked = _nginx_test(tmp_path, _wrapper(tmp_path, site))
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_nginx_refuses_a_broken_configuration(tmp_path):
    """The check is real: the same wrapper with a typo in the site fails."""
    site = _site_in(tmp_path)
    _self_signed(tmp_path)
    site.write_text(site.read_text().replace("proxy_pass http://clinic_ws;", "proxy_pas x;"))
    checked = _nginx_test(tmp_path, _wrapper(tmp_path, site))
    assert checked.returncode != 0 and "proxy_pas" in checked.stderr


def _directives(location: str) -> str:
    text = SITE.read_text()
    start = text.index(f"location {location} {{")
    return text[start : text.index("}", start)]


def test_the_proxy_routes_websockets_static_files_and_the_app():
    text = SITE.read_text()
    assert "server 127.0.0.1:8000" in text and "server 127.0.0.1:8001" in text
    assert "proxy_pass http://clinic_ws;" in _directives("/ws/")
    assert "proxy_pass http://clinic_http;" in _directives("/")
    assert "alias /srv/clinic/.run/static/;" in _directives("/static/")
    assert "server_name clinic.example *.clinic.example;" in text
    # The headers the app trusts, set once for every location (none sets its own).
    for header in (
        "X-Forwarded-Proto $scheme",
        "X-Forwarded-For $remote_addr",
        "X-Request-ID $clinic_request_id",
        "Upgrade $http_upgrade",
        "Connection $clinic_connection",
    ):
        assert f"proxy_set_header {header};" in text
    assert len(re.findall(r"^\s*proxy_set_header ", text, re.MULTILINE)) == 7
    # The app's own body limits stay below the proxy's.
    from django.conf import settings

    from billing.api.money import MAX_835_BYTES

    limit = int(re.search(r"client_max_body_size (\d+)m;", text).group(1)) * 1024 * 1024
    assert MAX_835_BYTES < limit and settings.DATA_UPLOAD_MAX_MEMORY_SIZE < limit


def _procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {
        name: shlex.split(command.split(" env ", 1)[-1])
        for name, command in (line.split(":", 1) for line in lines if line.strip())
    }


def _unit(name: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize(
    ("unit", "process"),
    [
        ("clinic-web.service", "web"),
        ("clinic-ws.service", "ws"),
        ("clinic-worker.service", "worker"),
        ("clinic-beat.service", "beat"),
    ],
)
def test_each_unit_runs_the_procfiles_process(unit, process):
    """Same program and options as `make run` (Procfile), bound to 127.0.0.1 behind nginx."""
    values = _unit(unit)
    command = shlex.split(values["ExecStart"][0])
    expected = [word for word in _procfile()[process] if "=" not in word or "--" in word]
    assert Path(command[0]).name == expected[0]
    options = [w for w in command[1:] if not w.startswith(("0.0.0.0", "127.0.0.1"))]
    for word in expected[1:]:
        if word.startswith("${") or word in ("0.0.0.0", ".run/celerybeat-schedule"):
            continue
        assert word in options, f"{unit} lacks {word} of the Procfile's {process}"
    assert "0.0.0.0" not in values["ExecStart"][0]
    assert values["Restart"] == ["always"]
    assert values["EnvironmentFile"] == ["/etc/clinic/clinic.env"]
    if process != "beat":  # started means healthy
        assert values["ExecStartPost"][0].startswith(
            "/srv/clinic/deploy/systemd/clinic-health --wait"
        )


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing: run `make test-deps` (apt-get install systemd)")
    # The units name /srv/clinic: here, this checkout (its .venv and deploy/).
    for unit in SYSTEMD.glob("clinic*.[st]*"):
        text = unit.read_text().replace("/srv/clinic/", f"{ROOT}/")
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(path) for path in tmp_path.iterdir())
    checked = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b'{"status": "degraded"}' if type(self).status != 200 else b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    class Handler(_Health):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Handler, f"http://127.0.0.1:{server.server_address[1]}/health/"
    server.shutdown()
    server.server_close()


def _health(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(HEALTH), *args], capture_output=True, text=True, timeout=60, env=env)


def test_the_health_check_passes_a_200_and_fails_a_503_without_a_restart(health_server, tmp_path):
    handler, url = health_server
    log = tmp_path / "systemctl.log"
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "SYSTEMCTL": str(fake), "CLINIC_BASE_DOMAIN": "localhost"}
    assert _health("--restart", "clinic-web.service", url, env=env).returncode == 0
    handler.status = 503
    degraded = _health("--restart", "clinic-web.service", url, env=env)
    assert degraded.returncode == 1 and "answered 503" in degraded.stderr
    assert not log.exists()
    # A server that answers, even 503, is started.
    assert _health("--wait", "5", url, env=env).returncode == 0


def test_the_health_check_restarts_a_server_that_does_not_answer(tmp_path):
    closed = "http://127.0.0.1:9/health/"  # the discard port: nothing listens
    log = tmp_path / "systemctl.log"
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "SYSTEMCTL": str(fake)}
    down = _health("--restart", "clinic-ws.service", closed, env=env)
    assert down.returncode == 1 and "does not answer" in down.stderr
    assert log.read_text() == "restart clinic-ws.service\n"
