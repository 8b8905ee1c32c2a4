"""A small GraphQL client for the CLI: submit a generation, follow it over WebSocket, show progress."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import websockets

MUTATIONS = {
    "image": ("generateImage", "GenerateImageInput"),
    "video": ("generateVideo", "GenerateVideoInput"),
    "text": ("generateText", "GenerateTextInput"),
}
JOB_FIELDS = "id status progress stage etaSeconds error { code message } assets { id url mimeType text }"
INT_PARAMS = {"count", "seed", "durationSeconds", "maxOutputTokens"}


def _value(name: str, raw: str) -> Any:
    if name in INT_PARAMS:
        return int(raw)
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    try:
        return float(raw) if name == "temperature" else raw
    except ValueError:
        return raw


def _bar(progress: float, stage: str, eta: int | None) -> str:
    width = 30
    filled = round(progress * width)
    eta_text = f" ~{eta}s left" if eta else ""
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {progress * 100:5.1f}% {stage:<12}{eta_text}   "


async def generate_and_watch(
    base_url: str, token: str, kind: str, prompt: str, *, watch: bool, extra: list[str]
) -> int:
    """Exit code 0 when the job succeeds (or is only submitted), 1 when it fails or is cancelled."""
    field, input_type = MUTATIONS[kind]
    payload: dict[str, Any] = {"prompt": prompt}
    for item in extra:
        name, sep, raw = item.partition("=")
        if not sep:
            print(f"--param needs NAME=VALUE, got {item!r}", file=sys.stderr)
            return 2
        payload[name] = _value(name, raw)
    query = f"mutation($input: {input_type}!) {{ job: {field}(input: $input) {{ {JOB_FIELDS} }} }}"
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        response = await http.post(
            "/v1/graphql", json={"query": query, "variables": {"input": payload}}, headers=headers
        )
    try:
        reply = response.json()
    except ValueError:
        print(
            f"error: the studio answered HTTP {response.status_code} without a GraphQL body", file=sys.stderr
        )
        return 1
    if reply.get("errors"):
        for error in reply["errors"]:
            print(f"error: {error['message']} ({error.get('extensions', {}).get('code')})", file=sys.stderr)
        return 1
    job = reply["data"]["job"]
    print(f"job {job['id']} {job['status']}", file=sys.stderr)
    if not watch:
        return 0
    ws_url = base_url.replace("http", "ws", 1) + "/v1/graphql"
    subscription = f"subscription($id: ID!) {{ jobProgress(id: $id) {{ job {{ {JOB_FIELDS} }} }} }}"
    async with websockets.connect(
        ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as socket:
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await socket.recv())
        if ack.get("type") != "connection_ack":
            print(f"error: connection refused: {ack}", file=sys.stderr)
            return 1
        await socket.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": subscription, "variables": {"id": job["id"]}},
                }
            )
        )
        async for frame in socket:
            message = json.loads(frame)
            if message["type"] == "next":
                if message["payload"].get("errors"):
                    print(f"\nerror: {message['payload']['errors'][0]['message']}", file=sys.stderr)
                    return 1
                job = message["payload"]["data"]["jobProgress"]["job"]
                print(
                    _bar(job["progress"], job["stage"], job.get("etaSeconds")),
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            elif message["type"] in ("complete", "error"):
                break
    print(file=sys.stderr)
    if job["status"] != "SUCCEEDED":
        error = job.get("error") or {}
        print(f"job {job['status']}: {error.get('message', '')} ({error.get('code', '')})", file=sys.stderr)
        return 1
    for asset in job["assets"]:
        print(asset["text"] if asset["mimeType"].startswith("text/") else asset["url"])
        if asset["mimeType"].startswith("text/"):
            print(asset["url"], file=sys.stderr)
    return 0
