"""Transport security: TLS verified by default, a custom CA through ``ssl=``, and no plain
``http://`` to another machine unless the caller says the network is trusted."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web

from sarvam_async import AsyncSarvam, RetryPolicy, errors

from .conftest import KEY

STATUS = {"job_id": "j", "job_state": "Running", "storage_container_type": "Azure"}
OPENSSL = [
    *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
    *("-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"),
]


@pytest.mark.parametrize(
    "url", ["http://api.sarvam.ai", "HTTP://10.0.0.5:8080", "http://127.0.0.1.example.com"]
)
def test_plain_http_to_another_machine_is_refused(url: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="allow_insecure_http"):
        AsyncSarvam(api_key=KEY, base_url=url)
    AsyncSarvam(api_key=KEY, base_url=url, allow_insecure_http=True)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80", "https://x.example"]
)
def test_loopback_and_https_need_no_permission(url: str) -> None:
    AsyncSarvam(api_key=KEY, base_url=url)


def test_ssl_takes_a_context_only() -> None:
    with pytest.raises(errors.ConfigurationError, match="SSLContext"):
        AsyncSarvam(api_key=KEY, ssl=False)  # type: ignore[arg-type]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [*OPENSSL, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_tls_is_verified_unless_the_ca_is_given(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate

    async def status(request: web.Request) -> web.Response:
        return web.json_response(STATUS)

    app = web.Application()
    app.router.add_get("/{tail:.*}", status)
    runner = web.AppRunner(app)
    await runner.setup()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with AsyncSarvam(api_key=KEY, base_url=url, retry=RetryPolicy.disabled()) as c:
            with pytest.raises(errors.APIConnectionError):
                await c.speech_to_text_job.get_status("j")
        trusted = ssl.create_default_context(cafile=str(cert))
        async with AsyncSarvam(api_key=KEY, base_url=url, ssl=trusted) as c:
            assert (await c.speech_to_text_job.get_status("j")).job_id == "j"
    finally:
        await runner.cleanup()
