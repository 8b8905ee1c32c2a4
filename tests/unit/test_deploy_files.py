"""The deploy files, read as text (no terraform binary here): the index file is well formed, the
media bucket stays private and cleans up after itself, and the Terraform is laid out as
`terraform fmt` would lay it out."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from backends.docstore.indexes import CONTAINS, NAME, parse_index_file

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
TERRAFORM = DEPLOY / "terraform"
TF_FILES = sorted(TERRAFORM.glob("*.tf"))
MAX_COMPOSITE_INDEXES = 200  # Firestore's limit per database


def _index_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DEPLOY / "firestore.indexes.json").read_text())
    return document


def _terraform() -> str:
    return "\n".join(path.read_text() for path in TF_FILES)


def _body(text: str, start: int) -> str:
    """The body of the block (or object) whose `{` is the first one at or after `start`."""
    depth, opening = 0, text.index("{", start)
    for at in range(opening, len(text)):
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        if depth == 0:
            return text[opening + 1 : at]
    raise AssertionError(f"unclosed block at {start}")


def _block(text: str, header: str) -> str:
    """The body of the first block whose header starts with `header`."""
    return _body(text, text.index(header))


def _blocks(text: str, name: str) -> list[str]:
    """The bodies of every block called `name` in `text`."""
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*{{", re.MULTILINE)
    return [_body(text, match.start()) for match in pattern.finditer(text)]


# ---------------------------------------------------------------- firestore.indexes.json


def test_the_index_file_has_firestores_shape() -> None:
    document = _index_document()
    assert set(document) == {"indexes", "fieldOverrides"}
    assert isinstance(document["fieldOverrides"], list)
    indexes = parse_index_file(document)
    assert indexes and len(indexes) <= MAX_COMPOSITE_INDEXES
    for entry in document["indexes"]:
        assert set(entry) == {"collectionGroup", "queryScope", "fields"}
        assert entry["queryScope"] in ("COLLECTION", "COLLECTION_GROUP")
    for index in indexes:
        paths = [field.path for field in index.fields]
        assert len(paths) == len(set(paths)), f"a field twice in {index}"
        assert sum(field.mode == CONTAINS for field in index.fields) <= 1, f"two array fields in {index}"
        assert NAME not in paths[:-1], f"{NAME} before the last field in {index}"
    assert len(set(indexes)) == len(indexes), "an index is declared twice"


# ---------------------------------------------------------------- the media bucket


def test_the_media_bucket_is_private_with_uniform_access() -> None:
    bucket = _block(_terraform(), 'resource "google_storage_bucket" "media"')
    assert re.search(r"^\s*uniform_bucket_level_access\s*=\s*true\s*$", bucket, re.MULTILINE)
    assert re.search(r'^\s*public_access_prevention\s*=\s*"enforced"\s*$', bucket, re.MULTILINE)


@pytest.mark.parametrize(("prefix", "days"), [("trash/", 30), ("tmp/", 1)])
def test_the_media_bucket_deletes_old_objects_under(prefix: str, days: int) -> None:
    bucket = _block(_terraform(), 'resource "google_storage_bucket" "media"')
    rules = [
        rule
        for rule in _blocks(bucket, "lifecycle_rule")
        if re.search(rf'matches_prefix\s*=\s*\["{re.escape(prefix)}"\]', rule)
    ]
    assert len(rules) == 1, f"one lifecycle rule for {prefix}"
    (rule,) = rules
    assert re.search(rf"^\s*age\s*=\s*{days}\s*$", rule, re.MULTILINE)
    assert re.search(r'type\s*=\s*"Delete"', _block(rule, "action"))


def test_nothing_grants_public_or_broad_access_to_media() -> None:
    text = _terraform()
    assert "google_storage_bucket_acl" not in text and "google_storage_object_acl" not in text
    for role in ("roles/owner", "roles/editor", "roles/storage.admin", "roles/storage.objectViewer"):
        assert role not in text
    for grant in re.finditer(r'resource "(google_storage_bucket_iam_\w+)"', text):
        body = _block(text, grant.group(0))
        assert "allUsers" not in body and "allAuthenticatedUsers" not in body


# ---------------------------------------------------------------- the rest of the Terraform


def test_the_composite_indexes_come_from_the_index_file() -> None:
    text = _terraform()
    assert 'jsondecode(file("${path.module}/../firestore.indexes.json"))' in text
    assert 'resource "google_firestore_index" "composite"' in text


def test_the_api_runs_no_workers_and_the_worker_runs_genmedia_worker() -> None:
    text = _terraform()
    api_env = _block(text, "  api_env = merge(")
    assert re.search(r'GENMEDIA_WORKERS\s*=\s*"0"', api_env)
    worker = _block(text, 'resource "google_cloud_run_v2_worker_pool" "worker"')
    assert re.search(r'command\s*=\s*\["genmedia"\]', worker)
    assert re.search(r'args\s*=\s*\["worker"\]', worker)


def test_every_variable_used_is_declared() -> None:
    text = _terraform()
    declared = set(re.findall(r'^variable "(\w+)"', text, re.MULTILINE))
    used = set(re.findall(r"\bvar\.(\w+)", text))
    assert used <= declared, f"undeclared: {sorted(used - declared)}"
    assert {"project", "region", "image", "admin_emails", "cors_origins"} <= declared


def test_every_local_and_resource_referenced_is_defined() -> None:
    text = _terraform()
    locals_defined = {
        name for body in _blocks(text, "locals") for name in re.findall(r"^  (\w+)\s*=", body, re.MULTILINE)
    }
    assert set(re.findall(r"\blocal\.(\w+)", text)) <= locals_defined
    resources = set(re.findall(r'^(?:resource|data) "(\w+)" "(\w+)"', text, re.MULTILINE))
    code = re.sub(r"#.*", "", text)
    # A `moved` block names an address that no longer exists, by design.
    code = re.sub(r"^moved \{.*?^\}", "", code, flags=re.MULTILINE | re.DOTALL)
    referenced = set(re.findall(r"\b(google_\w+)\.(\w+)\b", code))
    assert referenced <= resources, f"undefined: {sorted(referenced - resources)}"


# ---------------------------------------------------------------- terraform fmt's layout


def _code_brackets(line: str, state: list[str]) -> int:
    """The net bracket change of an HCL line, ignoring brackets inside string literals; `state`
    carries open strings and interpolations across lines (a stack of '"' and '${')."""
    net, i = 0, 0
    while i < len(line):
        ch, in_string = line[i], bool(state) and state[-1] == '"'
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == '"':
                state.pop()
            elif line.startswith("${", i) or line.startswith("%{", i):
                state.append("${")
                net += 1
                i += 1
        elif ch == "#" or line.startswith("//", i):
            break
        elif ch == '"':
            state.append('"')
        elif ch in "([{":
            net += 1
            if state:
                state.append(ch)
        elif ch in ")]}":
            net -= 1
            if state:
                state.pop()
        i += 1
    return net


def _layout_problems(text: str) -> list[str]:
    """Departures from hclwrite's formatting rules (indentation by open brackets, `=` aligned
    within runs of one-line attributes, no tabs or trailing spaces, one final newline)."""
    problems: list[str] = []
    if not text.endswith("\n") or text.endswith("\n\n"):
        problems.append("the file must end with exactly one newline")
    indents: list[int] = []
    chain: list[tuple[int, str]] = []  # (line number, text) of a run of one-line attributes
    state: list[str] = []

    def close_chain() -> None:
        if chain:
            width = max(len(line.split("=", 1)[0].rstrip()) for _, line in chain)
            for number, line in chain:
                key = line.split("=", 1)[0].rstrip()
                if not line.startswith(key + " " * (width - len(key)) + " = "):
                    problems.append(f"line {number}: '=' not aligned with its neighbours")
        chain.clear()

    for number, line in enumerate(text.split("\n")[:-1], start=1):
        if "\t" in line or line != line.rstrip():
            problems.append(f"line {number}: tab or trailing space")
        stripped = line.strip()
        if not stripped:
            close_chain()
            continue
        net = _code_brackets(stripped, state)
        if net < 0:
            closed = -net
            while closed and indents:
                if closed >= indents[-1]:
                    closed -= indents.pop()
                else:
                    indents[-1] -= closed
                    closed = 0
        expected = 2 * len(indents)
        if net > 0:
            indents.append(net)
        if len(line) - len(line.lstrip(" ")) != expected:
            problems.append(f"line {number}: indented {len(line) - len(line.lstrip())}, expected {expected}")
        is_attribute = re.match(r"^[\w\"-]+\s*=[^=>]", stripped) is not None and net == 0
        if is_attribute and not stripped.startswith("#"):
            chain.append((number, line.strip()))
        else:
            close_chain()
    close_chain()
    return problems


@pytest.mark.parametrize("path", TF_FILES, ids=[path.name for path in TF_FILES])
def test_the_terraform_is_formatted(path: Path) -> None:
    assert _layout_problems(path.read_text()) == []


def test_the_layout_check_sees_misalignment() -> None:
    text = 'resource "x" "y" {\n  name = "a"\n  location = "b"\n}\n'
    assert _layout_problems(text) == ["line 2: '=' not aligned with its neighbours"]
    assert _layout_problems("a = {\n    b = 1\n}\n") == ["line 2: indented 4, expected 2"]
