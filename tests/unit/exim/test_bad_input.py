"""`lint exim` on bad or hostile input: one line on stderr naming file (and line), exit 2, no traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auditor.cli import main
from auditor.collect.exim import collect


def _lint(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["lint", "exim", str(path), "--no-exim", "--format", "json"])
    out, err = capsys.readouterr()
    return rc, out, err


BAD = [
    ("binary", {"exim.conf": b"primary_hostname = x\n\x00\x01\x02\xff\n"}, "exim.conf:2"),
    (
        "include-loop",
        {"exim.conf": b".include a.conf\n", "a.conf": b".include b.conf\n", "b.conf": b".include a.conf\n"},
        "b.conf:1",
    ),
    ("include-missing", {"exim.conf": b"primary_hostname = x\n.include nothere.conf\n"}, "exim.conf:2"),
    ("endif-missing", {"exim.conf": b".ifdef X\nprimary_hostname = x\n"}, "exim.conf:2"),
    ("too-deep-ifdef", {"exim.conf": b".ifdef A\n" * 12}, "exim.conf:10"),
    ("bom", {"exim.conf": "\ufeffprimary_hostname = x\n".encode()}, "exim.conf:1"),
    ("no-equals-option", {"exim.conf": b"primary_hostname = x\nthis is not an option\n"}, "exim.conf:2"),
    (
        "condition-before-verb",
        {"exim.conf": b"begin acl\nrcpt:\n  domains = +local_domains\n"},
        "exim.conf:3",
    ),
    ("unknown-section", {"exim.conf": b"begin nonsense\n"}, "exim.conf:1"),
    (
        "10MB-line",
        {"exim.conf": b"primary_hostname = " + b"x" * 10_000_000 + b"\nnot an option line here\n"},
        "exim.conf:2",
    ),
]


@pytest.mark.parametrize(("case", "files", "where"), BAD, ids=[b[0] for b in BAD])
def test_one_line_error_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, files: dict[str, bytes], where: str
) -> None:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    rc, out, err = _lint(tmp_path / "exim.conf", capsys)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert where in lines[0], lines[0]


def test_not_a_config_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = _lint(tmp_path, capsys)
    assert rc == 2 and str(tmp_path) in err and len(err.strip().splitlines()) == 1


def test_large_valid_file_is_read(tmp_path: Path) -> None:
    """10 MB of list entries and macros: read, no error (a bounded, linear pass)."""
    body = "".join(f"M{i:05d}X = d{i}.example\n" for i in range(300))
    items = " : \\\n  ".join(f"h{i}.example.org" for i in range(400_000))
    conf = tmp_path / "exim.conf"
    conf.write_text(body + "domainlist local_domains = " + items + "\n")
    assert conf.stat().st_size > 10_000_000
    t0 = time.monotonic()
    cfg = collect(str(conf), use_exim=False)
    assert cfg.lists["local_domains"].value.count(":") == 399_999
    assert time.monotonic() - t0 < 120  # a generous bound: this guards against a hang, not speed


def test_secrets_are_redacted(tmp_path: Path) -> None:
    conf = tmp_path / "exim.conf"
    conf.write_text(
        "LDAP_PASSWORD = s3cr3t-one\nhide mysql_servers = db/exim/user/s3cr3t-two\n"
        "ldap_default_servers = ldap://cn=x:s3cr3t-three@ldap.example\nbegin authenticators\n"
        "plain:\n  driver = plaintext\n  public_name = PLAIN\n  client_send = ^user^s3cr3t-four\n"
    )
    from auditor.serialize import to_jsonable

    text = str(to_jsonable(collect(str(conf), use_exim=False)))
    assert "s3cr3t" not in text
