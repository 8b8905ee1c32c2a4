"""The Cloud Tasks delivery endpoint exists only where deliveries are expected (GENMEDIA_QUEUE=cloudtasks
or GENMEDIA_TASKS_ENDPOINT=true); the embedded default has no such door."""

from __future__ import annotations

import httpx

from tests.support.client import StudioClient


async def test_the_task_endpoint_is_not_served_on_the_docstore_queue(anonymous: StudioClient) -> None:
    async with httpx.AsyncClient(base_url=anonymous.base_url, timeout=10) as http:
        response = await http.post("/internal/tasks/run", json={"jobId": "anything"})
    assert response.status_code == 404
