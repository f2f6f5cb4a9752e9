"""Every real-world file in the shared corpus: parsed, or refused with file and line; never a crash."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from auditor.collect.postfix import PostfixConfig, collect
from auditor.model import InputError
from tests.conftest import CORPUS, need_shared

DIR = CORPUS / "postfix"
FILES = sorted(p.name for p in DIR.iterdir() if p.name != "SOURCES.md") if DIR.is_dir() else []
MAIN_FILES = [f for f in FILES if "main.cf" in f]
MASTER_FILES = [f for f in FILES if "master" in f]
UNTEMPLATED = [
    "docker-mailserver+docker-mailserver__target_postfix_main.cf",
    "mailcow+mailcow-dockerized__data_conf_postfix_main.cf",
]


def _stage(tmp_path: Path, main: str, master: str | None = None) -> Path:
    shutil.copyfile(need_shared(DIR / main), tmp_path / "main.cf")
    if master:
        shutil.copyfile(need_shared(DIR / master), tmp_path / "master.cf")
    past = time.time() - 60
    for p in tmp_path.iterdir():
        os.utime(p, (past, past))
    return tmp_path


def _partner(main: str) -> str | None:
    prefix = main.split("__", 1)[0]
    return next((m for m in MASTER_FILES if m.startswith(prefix + "__")), None)


def test_corpus_is_present() -> None:
    need_shared(DIR)
    assert len(FILES) >= 21


@pytest.mark.parametrize("use_postconf", [False, None])
@pytest.mark.parametrize("name", FILES)
def test_every_file_as_main_cf_never_crashes(tmp_path: Path, name: str, use_postconf: bool | None) -> None:
    d = _stage(tmp_path, name, _partner(name) if name in MAIN_FILES else None)
    try:
        cfg = collect(str(d), use_postconf=use_postconf)
    except InputError as err:
        # refused: one clear line naming the file (and the line, for syntax errors)
        assert err.path is not None and str(d) in err.path
        assert "\n" not in str(err)
        return
    assert isinstance(cfg, PostfixConfig)
    assert cfg.services, "a parsed config always has services (its master.cf or the stock ones)"
    for t in cfg.templates:
        assert t.location.line and t.location.line > 0


@pytest.mark.parametrize("name", MAIN_FILES)
def test_real_main_cf_files_parse(tmp_path: Path, name: str) -> None:
    cfg = collect(str(_stage(tmp_path, name, _partner(name))), use_postconf=False)
    explicit = [p for p in cfg.params.values() if p.explicit]
    assert len(explicit) >= 5
    assert all(p.location is not None and p.location.line for p in explicit)
    if name in UNTEMPLATED:
        assert cfg.templates == ()
    else:
        assert cfg.templates, "a template file must have its placeholders recorded"


@pytest.mark.parametrize("name", MASTER_FILES)
def test_real_master_cf_files_parse(tmp_path: Path, name: str) -> None:
    (tmp_path / "main.cf").write_text("myhostname = mx.example.org\n")
    cfg = collect(str(_master_only(tmp_path, name)), use_postconf=False)
    assert any(s.name in ("smtp", "submission") or s.templated for s in cfg.services)
    assert cfg.master_cf is not None


def _master_only(tmp_path: Path, name: str) -> Path:
    shutil.copyfile(need_shared(DIR / name), tmp_path / "master.cf")
    return tmp_path


@pytest.mark.parametrize(
    "name", ["LukeSmithxyz+emailwiz__emailwiz.sh", "mail-in-a-box+mailinabox__setup_mail-postfix.sh"]
)
def test_shell_scripts_are_refused_with_a_line(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="missing '='") as err:
        collect(str(_stage(tmp_path, name)), use_postconf=False)
    assert err.value.line is not None and err.value.line > 1


def test_yunohost_block_tags_are_skipped_and_recorded(tmp_path: Path) -> None:
    name = "YunoHost+yunohost__conf_postfix_main.cf"
    cfg = collect(str(_stage(tmp_path, name)), use_postconf=False)
    blocks = {t.location.line: t for t in cfg.templates if t.token.startswith("{%")}
    # lines 142/146: "    {%- if enable_blocklists == 'True' %}" / "{%- endif %}", indented inside
    # "smtpd_client_restrictions =" (line 139): they belong to that value
    assert blocks[142].parameter == blocks[146].parameter == "smtpd_client_restrictions"
    # line 32 "{% if compatibility == ... %}" at column 0 between assignments belongs to none
    assert blocks[32].parameter is None and blocks[51].parameter is None
    assert all(t.skipped_text == "" for t in blocks.values())
    assert any(p.templated for p in cfg.params.values())
