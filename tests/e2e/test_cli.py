"""The `genmedia` command line, run as a real process against a real studio."""

from __future__ import annotations

import re

import pytest

from tests.conftest import assert_error
from tests.e2e.conftest import Processes
from tests.e2e.helpers import download, run_cli
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, free_port, mint_token, studio_env

TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ME = "{ me { email role status } }"


def cli_env(processes: Processes, server: StudioProcess | None = None, **extra: str) -> dict[str, str]:
    """The environment the CLI runs with: the test's data dir and, if any, the test server's port."""
    return studio_env(processes.data_dir, server.port if server else free_port(), extra)


async def cli_token(processes: Processes, server: StudioProcess, email: str, *role: str) -> str:
    result = await run_cli("token", "--email", email, *role, env=cli_env(processes, server))
    assert result.returncode == 0, result
    return result.stdout.strip()


async def test_token_prints_only_a_token_and_makes_the_user_an_active_admin(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "0"})
    await mint_token(processes.data_dir, "x@example.com", "USER", "PENDING")  # known, not yet approved

    result = await run_cli(
        "token", "--email", "x@example.com", "--role", "admin", env=cli_env(processes, server)
    )

    assert result.returncode == 0, result
    assert result.stderr == "", result
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout == lines[0] + "\n", result.stdout
    assert TOKEN.fullmatch(lines[0]), lines[0]
    me = (await StudioClient(server.base_url, lines[0]).data(ME))["me"]
    assert me == {"email": "x@example.com", "role": "ADMIN", "status": "ACTIVE"}


async def test_user_set_blocks_a_user_whose_token_is_then_forbidden(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "0"})
    token = await cli_token(processes, server, "y@example.com")  # not used before the block (auth cache)

    result = await run_cli(
        "user", "set", "--email", "y@example.com", "--status", "blocked", env=cli_env(processes, server)
    )

    assert result.returncode == 0, result
    assert '"BLOCKED"' in result.stdout and "y@example.com" in result.stdout, result.stdout
    client = StudioClient(server.base_url, token)
    assert (await client.data(ME))["me"] == {"email": "y@example.com", "role": "USER", "status": "BLOCKED"}
    error = await client.error('mutation { generateImage(input: {prompt: "nope"}) { id } }')
    assert_error(error, "FORBIDDEN")
    assert_error(await client.error("{ assets { totalCount } }"), "FORBIDDEN")


async def test_generate_image_watch_shows_progress_and_prints_a_png_url(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "1", "GENMEDIA_LOCAL_SPEED": "4"})
    token = await cli_token(processes, server, "kite@example.com")

    result = await run_cli(
        "generate", "image", "a red kite", "--watch", env=cli_env(processes, server, GENMEDIA_TOKEN=token)
    )

    assert result.returncode == 0, result
    assert re.search(r"job \S+ QUEUED", result.stderr), result.stderr
    bars = re.findall(r"\r\[[#.]+\]\s+(\d+\.\d)%", result.stderr)
    assert len(bars) >= 3 and bars[-1] == "100.0", result.stderr
    assert [float(b) for b in bars] == sorted(float(b) for b in bars), bars
    (url,) = result.stdout.splitlines()
    assert url.startswith(f"{server.base_url}/files/"), url
    response = await download(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_generate_text_watch_prints_the_text(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "1"})
    token = await cli_token(processes, server, "poet@example.com")

    result = await run_cli(
        "generate",
        "text",
        "a short poem about tea",
        "--watch",
        "--param",
        "maxOutputTokens=60",
        env=cli_env(processes, server, GENMEDIA_TOKEN=token),
    )

    assert result.returncode == 0, result
    data = await StudioClient(server.base_url, token).data(
        "{ assets(filter: {kinds: [TEXT]}) { edges { node { text url } } } }"
    )
    (edge,) = data["assets"]["edges"]
    text = edge["node"]["text"]
    assert text and result.stdout == text + "\n", (result.stdout, text)
    assert "/files/" in result.stderr, result.stderr


async def test_generate_without_a_token_says_how_to_get_one(processes: Processes) -> None:
    result = await run_cli("generate", "image", "anything", env=cli_env(processes))
    assert result.returncode == 2, result
    assert "GENMEDIA_TOKEN" in result.stderr and "Traceback" not in result.stderr, result


async def test_export_schema_prints_the_sdl(processes: Processes) -> None:
    result = await run_cli("export-schema", env=cli_env(processes))
    assert result.returncode == 0, result
    assert "type Query {" in result.stdout and "type Subscription {" in result.stdout
    assert "jobProgress(id: ID!): JobEvent!" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [("GENMEDIA_PORT", "abc"), ("GENMEDIA_DOCSTORE", "mongo"), ("GENMEDIA_WORKERS", "-1")],
)
async def test_serve_refuses_an_invalid_setting_with_one_line_naming_it(
    processes: Processes, name: str, value: str
) -> None:
    result = await run_cli("serve", env={**cli_env(processes), name: value}, timeout=20)

    assert result.returncode != 0, result
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(output) == 1, output
    assert name in output[0] and "Traceback" not in output[0], output


async def test_generate_watch_exits_non_zero_and_says_why_when_the_job_fails(processes: Processes) -> None:
    server = processes.serve({"GENMEDIA_WORKERS": "1", "GENMEDIA_LOCAL_FAIL_RATE": "1"})
    token = await cli_token(processes, server, "unlucky@example.com")

    result = await run_cli(
        "generate", "image", "doomed", "--watch", env=cli_env(processes, server, GENMEDIA_TOKEN=token)
    )

    assert result.returncode == 1, result
    assert result.stdout == "", result.stdout
    assert "job FAILED" in result.stderr and "UPSTREAM_UNAVAILABLE" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


async def test_token_refuses_a_bad_email_with_one_line_and_no_traceback(processes: Processes) -> None:
    result = await run_cli("token", "--email", "not-an-email", env=cli_env(processes))
    assert result.returncode == 2, result
    assert result.stdout == "", result.stdout
    (line,) = result.stderr.splitlines()
    assert "not an email address" in line and "BAD_USER_INPUT" in line, line


async def test_generate_says_which_studio_it_cannot_reach(processes: Processes) -> None:
    port = free_port()  # nothing listens here
    result = await run_cli(
        "generate",
        "image",
        "nowhere",
        "--watch",
        env=cli_env(processes, GENMEDIA_PORT=str(port), GENMEDIA_TOKEN="t"),
    )
    assert result.returncode == 1, result
    (line,) = result.stderr.splitlines()
    assert f"http://127.0.0.1:{port}" in line and "Traceback" not in line, line
