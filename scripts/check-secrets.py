"""Fail when the tracked files hold a secret-looking string that the audited baseline does not list.

`detect-secrets` looks at every file git tracks or would track (untracked files that are not
ignored, so a check before a commit sees what a clean clone will); `.secrets.baseline` lists the
findings that were audited as not secret (test vectors, documented prefixes). Line numbers are
ignored, so editing around an audited value does not fail the check; a new value does. After
auditing a new finding: `.venv/bin/detect-secrets scan --baseline .secrets.baseline $(git ls-files)`
and mark it `"is_secret": false`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / ".secrets.baseline"


def findings(report: dict[str, list[dict[str, object]]]) -> set[tuple[str, str, str]]:
    return {
        (path, str(item["type"]), str(item["hashed_secret"]))
        for path, items in report.items()
        for item in items
    }


def main() -> int:
    scanner = Path(sys.executable).with_name("detect-secrets")
    # Every file git tracks or would track (new files too, so a check before committing sees what a
    # clean clone will); the baseline holds hashes of the audited findings, which look like secrets.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    files = [name for name in listed if name != ".secrets.baseline" and (ROOT / name).is_file()]
    command = [str(scanner), "scan", *files]
    scan = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True)
    found = findings(json.loads(scan.stdout)["results"])
    baseline = json.loads(BASELINE.read_text())["results"]
    unaudited = {
        (path, str(item["type"]), str(item["hashed_secret"]))
        for path, items in baseline.items()
        for item in items
        if item.get("is_secret") is not False
    }
    audited = findings(baseline) - unaudited
    new = sorted(found - audited)
    for path, kind, _ in new:
        print(f"possible secret ({kind}) in {path}: remove it, or audit it into .secrets.baseline")
    if new:
        return 1
    print(f"secrets: {len(found)} findings, all audited as not secret")
    return 0


if __name__ == "__main__":
    sys.exit(main())
