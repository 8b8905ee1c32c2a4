"""Webhook POSTs with httpcore over a connection pinned to one vetted address.

The domain resolves the host, vets every address, and hands one of them in: the connection goes to
exactly that address, so a second DNS answer (rebinding) cannot redirect it, while the URL's host
still names the TLS server (SNI, certificate check) and the `Host` header. httpcore never follows
redirects and, unlike httpx, never reads proxy settings from the environment.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence

import httpcore

from domain.ports import WebhookSendError


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to `address` whatever host the URL names."""

    def __init__(self, address: str) -> None:
        self._address = address
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(self._address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise WebhookSendError("webhooks are not sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class HttpWebhookSender:
    """The WebhookSender of every deployment: the system resolver, and one connection per POST."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context or ssl.create_default_context()

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as error:
            raise WebhookSendError(f"{host} does not resolve") from error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise WebhookSendError(f"{host} does not resolve")
        return addresses

    async def post(
        self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float
    ) -> int:
        extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
        pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl, max_connections=1, retries=0, network_backend=_PinnedBackend(address)
        )
        try:
            async with asyncio.timeout(timeout), pool:
                async with pool.stream(
                    "POST", url, headers=list(headers.items()), content=body, extensions=extensions
                ) as response:
                    return response.status  # the body is not read: only the status counts
        except TimeoutError:
            raise WebhookSendError(f"timed out: no response within {timeout:g} s") from None
        except httpcore.TimeoutException as error:
            raise WebhookSendError(f"timed out ({type(error).__name__}) after {timeout:g} s") from None
        except httpcore.ConnectError as error:
            raise WebhookSendError(f"could not connect: {_reason(error)}") from None
        except ssl.SSLError as error:
            raise WebhookSendError(f"TLS failed: {_reason(error)}") from None
        except (httpcore.NetworkError, httpcore.ProtocolError) as error:
            raise WebhookSendError(f"{type(error).__name__}: {_reason(error)}") from None
        except httpcore.UnsupportedProtocol as error:
            raise WebhookSendError(f"unsupported URL: {_reason(error)}") from None


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:200]
