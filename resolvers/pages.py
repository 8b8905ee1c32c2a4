"""Domain pages → schema connections."""

from __future__ import annotations

from domain.pages import Page
from schema.assets import Asset, AssetConnection, AssetEdge
from schema.jobs import Job, JobConnection, JobEdge
from schema.nodes import PageInfo
from schema.users import AuditEvent, AuditEventConnection, AuditEventEdge


def asset_connection(page: Page) -> AssetConnection:
    edges = [
        AssetEdge(node=Asset.from_doc(doc), cursor=c) for doc, c in zip(page.items, page.cursors, strict=True)
    ]
    return AssetConnection(edges=edges, page_info=PageInfo.of(page), _total=page.total)


def job_connection(page: Page) -> JobConnection:
    edges = [
        JobEdge(node=Job.from_doc(doc), cursor=c) for doc, c in zip(page.items, page.cursors, strict=True)
    ]
    return JobConnection(edges=edges, page_info=PageInfo.of(page), _total=page.total)


def audit_connection(page: Page) -> AuditEventConnection:
    edges = [
        AuditEventEdge(node=AuditEvent.from_doc(doc), cursor=c)
        for doc, c in zip(page.items, page.cursors, strict=True)
    ]
    return AuditEventConnection(edges=edges, page_info=PageInfo.of(page), _total=page.total)
