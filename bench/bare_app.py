"""The baseline: a bare Starlette app under the same uvicorn build and flags as `genmedia serve`.

- `POST /v1/graphql` parses the JSON body and answers a fixed `{ me { id } }` result.
- WebSocket `/v1/graphql` speaks just enough graphql-transport-ws for the bench client
  (init → ack, subscribe → the current state at once), and `POST /broadcast` sends one
  `next` carrying the posted text as `job.message` to every subscription; `POST /complete` ends them.

Run: `python -m bench.bare_app --port N`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

ME = {"data": {"me": {"id": "VXNlcjpiZW5jaA=="}}}
PROTOCOL = "graphql-transport-ws"


def _event(op_id: str, message: str | None) -> str:
    job = {
        "id": "Sm9iOmJlbmNo",
        "status": "RUNNING",
        "progress": 0.5,
        "stage": "generating",
        "message": message,
        "etaSeconds": None,
    }
    payload = {"data": {"jobProgress": {"previousStatus": "RUNNING", "job": job}}}
    return json.dumps({"id": op_id, "type": "next", "payload": payload})


def create_app() -> Starlette:
    subscriptions: dict[WebSocket, set[str]] = {}

    async def graphql_http(request: Request) -> Response:
        body = json.loads(await request.body())
        if "query" not in body:
            return JSONResponse({"errors": [{"message": "no query"}]}, 400)
        return JSONResponse(ME)

    async def readyz(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def graphql_ws(websocket: WebSocket) -> None:
        await websocket.accept(subprotocol=PROTOCOL)
        ops: set[str] = set()
        try:
            while True:
                message: dict[str, Any] = json.loads(await websocket.receive_text())
                kind = message.get("type")
                if kind == "connection_init":
                    await websocket.send_text('{"type":"connection_ack"}')
                elif kind == "subscribe":
                    ops.add(str(message["id"]))
                    subscriptions[websocket] = ops
                    await websocket.send_text(_event(str(message["id"]), None))
                elif kind == "complete":
                    ops.discard(str(message.get("id")))
                elif kind == "ping":
                    await websocket.send_text('{"type":"pong"}')
        except WebSocketDisconnect:
            pass
        finally:
            subscriptions.pop(websocket, None)

    async def _send_all(render: Any) -> int:
        texts: dict[str, str] = {}
        sent = 0
        for websocket, ops in list(subscriptions.items()):
            for op_id in list(ops):
                text = texts.get(op_id)
                if text is None:
                    text = texts[op_id] = render(op_id)
                try:
                    await websocket.send_text(text)
                    sent += 1
                except Exception:  # a socket that went away meanwhile
                    subscriptions.pop(websocket, None)
        return sent

    async def broadcast(request: Request) -> Response:
        message = (await request.body()).decode()
        sent = await _send_all(lambda op_id: _event(op_id, message))
        return PlainTextResponse(str(sent))

    async def complete(request: Request) -> Response:
        sent = await _send_all(lambda op_id: json.dumps({"id": op_id, "type": "complete"}))
        return PlainTextResponse(str(sent))

    return Starlette(
        routes=[
            Route("/v1/graphql", graphql_http, methods=["POST"]),
            Route("/readyz", readyz),
            Route("/broadcast", broadcast, methods=["POST"]),
            Route("/complete", complete, methods=["POST"]),
            WebSocketRoute("/v1/graphql", graphql_ws),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same flags as cli._serve (ws_max_size = the studio's default ws_max_message_bytes).
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=64 * 1024,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
