"""Domain pages → schema connections."""

from __future__ import annotations

from domain.pages import Page
from schema.assets import Asset, AssetConnection, AssetEdge
from schema.jobs import Job, JobConnection, JobEdge
from schema.nodes import PageInfo
from schema.users import AuditEvent, AuditEventConnection, AuditEventEdge


def page_info(page: Page) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next,
        has_previous_page=page.has_previous,
        start_cursor=page.cursors[0] if page.cursors else None,
        end_cursor=page.cursors[-1] if page.cursors else None,
    )


def asset_connection(page: Page) -> AssetConnection:
    edges = [
        AssetEdge(node=Asset.from_doc(doc), cursor=c) for doc, c in zip(page.items, page.cursors, strict=True)
    ]
    return AssetConnection(edges=edges, page_info=page_info(page), _total=page.total)


def job_connection(page: Page) -> JobConnection:
    edges = [
        JobEdge(node=Job.from_doc(doc), cursor=c) for doc, c in zip(page.items, page.cursors, strict=True)
    ]
    return JobConnection(edges=edges, page_info=page_info(page), _total=page.total)


def audit_connection(page: Page) -> AuditEventConnection:
    edges = [
        AuditEventEdge(node=AuditEvent.from_doc(doc), cursor=c)
        for doc, c in zip(page.items, page.cursors, strict=True)
    ]
    return AuditEventConnection(edges=edges, page_info=page_info(page), _total=page.total)
