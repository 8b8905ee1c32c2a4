"""Uploads on the production path: a `genmedia serve` on the Firestore and Cloud Storage emulators.

createUpload hands out a V4 signed resumable-upload start, checked here as GCS would check it. The
emulator cannot open an XML-API resumable session (it has no POST on object paths), so the bytes
are then written where that session would write them, with the emulator's XML PUT; completeUpload
reads them back from the bucket, checks them and publishes the asset.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest

from tests.conftest import assert_error
from tests.e2e.conftest import Processes
from tests.e2e.test_cloud_adapters import Cloud, assert_signed_download, cli_token, cloud, project_id
from tests.support.client import StudioClient
from tests.support.gcs_emulator import verify_v4_signed_url
from tests.support.media import image_bytes

__all__ = ["cloud"]  # the module's emulators, shared with the other cloud tests' fixture
pytestmark = pytest.mark.timeout(60)

CREATE = """mutation($filename: String!, $mimeType: String!, $bytes: Int!) {
  createUpload(filename: $filename, mimeType: $mimeType, bytes: $bytes) {
    asset { id } uploadUrl method headers maxBytes
  }
}"""
COMPLETE = """mutation($assetId: ID!) {
  completeUpload(assetId: $assetId) { id kind mimeType bytes width height contentSha256 url }
}"""


async def start_upload(
    cloud: Cloud, client: StudioClient, data: bytes, declared: str
) -> tuple[dict[str, Any], str]:
    """createUpload, its signed start request checked as GCS would: the ticket and the staging key."""
    variables = {"filename": "photo.png", "mimeType": declared, "bytes": len(data)}
    ticket = (await client.data(CREATE, variables))["createUpload"]
    assert ticket["method"] == "POST" and ticket["maxBytes"] == len(data)
    assert ticket["headers"] == {
        "content-type": declared,
        "x-goog-content-length-range": f"0,{len(data)}",
        "x-goog-resumable": "start",
    }
    checked = verify_v4_signed_url(
        ticket["uploadUrl"], cloud.key.public_key, method="POST", headers=ticket["headers"]
    )
    assert checked.bucket == cloud.storage.bucket and checked.key.startswith("tmp/uploads/"), checked
    assert checked.expires_in == 600  # GENMEDIA_UPLOAD_TTL_SECONDS
    assert set(checked.signed_headers) == {"host", *ticket["headers"]}
    return ticket, checked.key


async def send_as_the_session_would(cloud: Cloud, key: str, data: bytes, content_type: str) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        response = await http.put(
            cloud.storage.object_url(cloud.storage.bucket, key),
            content=data,
            headers={"Content-Type": content_type},
        )
    assert response.status_code == 200, response.text


async def test_an_upload_through_the_bucket_becomes_an_asset_and_a_mismatch_leaves_nothing(
    cloud: Cloud, processes: Processes
) -> None:
    env = cloud.env(project_id(), GENMEDIA_WORKERS="0", GENMEDIA_UPLOAD_TTL_SECONDS="600")
    server = processes.serve(env)
    client = StudioClient(server.base_url, await cli_token(processes, env, "uploader@example.com"))
    png = image_bytes("image/png", 160, 96)

    ticket, staging = await start_upload(cloud, client, png, "image/png")
    await send_as_the_session_would(cloud, staging, png, "image/png")
    asset = (await client.data(COMPLETE, {"assetId": ticket["asset"]["id"]}))["completeUpload"]

    assert (asset["kind"], asset["mimeType"], asset["bytes"]) == ("IMAGE", "image/png", len(png))
    assert (asset["width"], asset["height"]) == (160, 96)
    assert asset["contentSha256"] == hashlib.sha256(png).hexdigest()
    assert (await assert_signed_download(cloud, asset)).content == png
    assert cloud.objects("tmp/uploads/") == []

    jpeg = image_bytes("image/jpeg")
    ticket, staging = await start_upload(cloud, client, jpeg, "image/png")
    await send_as_the_session_would(cloud, staging, jpeg, "image/png")
    error = await client.error(COMPLETE, {"assetId": ticket["asset"]["id"]})

    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["field"] == "mimeType"
    assert cloud.objects("tmp/uploads/") == []
    raw = base64.b64decode(ticket["asset"]["id"]).decode().partition(":")[2]
    assert not [name for name in cloud.objects("assets/") if raw in name]
