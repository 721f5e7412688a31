"""The class editor in headless Chromium against ``ama-server serve``: a project admin
writes a schema and rules, sees the server's checks live, saves, and the server then
refuses a version that breaks them; readers see the rules only. And ``ama class init NAME
--edit`` opening the editor, on a folder remote and on a server remote.

The project demo of ``site`` has wanda (writer), rita (reader) and here pam, an admin of
demo; otto is a reader of another project.
"""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from ama.plumbing.errors import BadInput, ValidationFailed
from ama.plumbing.rules import MAX_LISTED, MAX_SCHEMA_STEPS
from ama.plumbing.transport import HttpTransport
from ama_remote.dashboard.classes import MAX_FILE_CHECKS, examine
from ama_remote.dashboard.pages import csrf_token
from tests.integration.test_dashboard import Site, commit, csrf_of, in_process, sign_in, site
from tests.services.browser import Browser
from tests.services.server import ADMIN, RunningServer
from tests.unit.porcelain.published import publish

__all__ = ["site"]  # the fixture, shared with the dashboard's other tests

SCHEMA = {"type": "object", "required": ["season"],
          "properties": {"season": {"enum": ["spring", "autumn"]}}}
AMA = str(Path(sys.executable).parent / "ama")
# A "browser" that only writes down the URL it is asked to open.
RECORDER = "import sys, pathlib; pathlib.Path(sys.argv[2]).write_text(sys.argv[1])\n"


@pytest.fixture
def admins(site: Site) -> Site:
    site.service.add_user("pam", "pam@example.org")
    site.service.grant("demo", "pam", "admin")
    site.tokens["pam"] = site.service.issue_token("pam")
    site.tokens[ADMIN] = site.service.issue_token(ADMIN)
    return site


def result(b: Browser, kind: str, text: str) -> str:
    """Wait until the example's verdict is ``kind`` (ok, bad) and says ``text``."""
    shown = b.page.locator(f"#example-result.{kind}", has_text=text)
    shown.wait_for()
    found: str = shown.inner_text()
    return found


def test_an_admin_writes_rules_checks_them_live_saves_and_the_server_enforces_them(
        admins: Site, browser: Callable[[], Browser], clean_env: Path) -> None:
    site = admins
    b = browser()
    page = b.page
    sign_in(b, site, "pam", "/p/demo/c/tables")
    b.follow(page.get_by_role("link", name="Schema and rules"))
    assert page.url.endswith("/p/demo/c/tables/edit")
    assert json.loads(page.input_value("#visualisation"))["*.png"] == "image"

    # A schema that is no JSON Schema: the server's message, beside the field.
    page.fill("#schema", '{"type": "objekt"}')
    error = page.locator("[data-error-for=schema]")
    error.wait_for()
    assert error.inner_text().startswith("class schema is not a valid JSON Schema")
    b.shot("editor-bad-schema")
    page.fill("#schema", json.dumps(SCHEMA, indent=2))
    error.wait_for(state="hidden")

    page.fill("#example", '{"season": "winter"}')
    assert "'winter' is not one of ['spring', 'autumn']" in result(b, "bad", "breaks 1 rule")
    b.shot("editor-example-refused")
    page.fill("#example", '{"season": "spring", "site": "marsh"}')
    result(b, "ok", "the example passes the schema")

    page.fill("#forbidden_files", "*.tmp\nscratch/")
    page.fill("#example_files", "a.csv 120\nnotes.tmp 5\nscratch/run 1.log")
    files = page.locator("#files-result.bad", has_text="breaks 2 rule")
    files.wait_for()
    assert files.locator("li").all_inner_texts() == [
        "forbidden_files: notes.tmp matches '*.tmp'",
        "forbidden_files: scratch/run 1.log matches 'scratch/'"]
    page.fill("#example_files", "a.csv 120")
    page.locator("#files-result.ok", has_text="pass the file rules").wait_for()
    page.fill("#max_tags", "many")
    tags = page.locator("[data-error-for=max_tags]")
    tags.wait_for()
    assert tags.inner_text() == "rule max_tags must be a non-negative integer"
    page.fill("#max_tags", "4")
    tags.wait_for(state="hidden")
    b.shot("editor-filled")
    b.follow(page.get_by_role("button", name="Save"))
    assert page.locator(".notice").inner_text().startswith("Saved")
    assert page.input_value("#forbidden_files") == "*.tmp\nscratch/"
    b.shot("editor-saved")
    assert b.dialogs == []

    caller = site.service.authenticate(site.tokens["pam"])
    stored = site.service.get_class(caller, "demo", "tables")
    assert stored["schema"] == SCHEMA
    assert stored["rules"] == {"forbidden_files": ["*.tmp", "scratch/"], "max_tags": 4}
    assert stored["visualisation"]["*.csv"]["viewer"] == "table"  # kept as it was

    # The server refuses what breaks the new rules.
    transport = HttpTransport(site.url, token=site.tokens["pam"])
    with pytest.raises(ValidationFailed) as refused:
        publish(transport, "demo", "tables", {"a.csv": b"x,y\n", "notes.tmp": b"draft"})
    assert refused.value.problems == [
        "schema: metadata (root): 'season' is a required property",
        "forbidden_files: notes.tmp matches '*.tmp'"]
    with pytest.raises(ValidationFailed) as refused:
        commit(site.service, caller, "demo", "tables", {"a.csv": b"x,y\n"},
               metadata={"season": "winter"})
    assert refused.value.problems == [
        "schema: metadata season: 'winter' is not one of ['spring', 'autumn']"]
    commit(site.service, caller, "demo", "tables", {"a.csv": b"x,y\n"},
           metadata={"season": "autumn"})  # what follows them passes


def test_without_javascript_the_check_button_gives_the_same_answers(
        admins: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    sign_in(b, admins, "pam", "/p/demo/c/tables/edit")
    session = next(c["value"] for c in b.context.cookies() if c["name"] == "ama_session")
    form = {"csrf": csrf_of(b), "schema": json.dumps(SCHEMA), "example": '{"season": 1}',
            "tag_pattern": "(unclosed", "action": "check"}
    answer = requests.post(admins.url + "/p/demo/c/tables/edit", data=form,
                           cookies={"ama_session": session}, timeout=30)
    assert answer.status_code == 400  # a rule the server would refuse
    expected = examine({k: v for k, v in form.items() if k not in ("csrf", "action")})
    assert expected.errors["tag_pattern"] in answer.text.replace("&#39;", "'")
    assert "1 is not one of" in answer.text
    caller = admins.service.authenticate(admins.tokens["pam"])
    assert admins.service.get_class(caller, "demo", "tables")["schema"] is None  # unsaved


@pytest.mark.parametrize(("name", "text", "sent"), [
    ("schema", '{"type": "objekt"}', {"schema": {"type": "objekt"}}),
    ("schema", '{"properties": {"a": {"pattern": "(?=a)"}}}',
     {"schema": {"properties": {"a": {"pattern": "(?=a)"}}}}),
    ("schema", '{"$ref": "https://example.org/s.json"}',
     {"schema": {"$ref": "https://example.org/s.json"}}),
    ("tag_pattern", "(unclosed", {"rules": {"tag_pattern": "(unclosed"}}),
    ("max_file_size", "-1", {"rules": {"max_file_size": -1}}),
    ("visualisation", '{"*.csv": "spreadsheet"}', {"visualisation": {"*.csv": "spreadsheet"}}),
])
def test_the_editor_refuses_with_the_words_of_the_service(
        tmp_path: Path, name: str, text: str, sent: dict[str, object]) -> None:
    service, admin, _client = in_process(tmp_path)
    with pytest.raises(BadInput) as refused:
        service.put_class(admin, "demo", "tables", **sent)  # type: ignore[arg-type]
    assert examine({name: text}).errors == {name: refused.value.message}
    service.db.dispose()


def test_a_reader_sees_the_rules_without_a_form_and_a_forged_save_is_refused(
        admins: Site, browser: Callable[[], Browser]) -> None:
    site = admins
    reader = browser()
    sign_in(reader, site, "rita", "/p/demo/c/tables/edit")
    page = reader.page
    assert page.locator("form.class-editor").count() == 0
    assert page.locator("textarea").count() == 0
    assert "image" in page.locator("pre.visualisation").inner_text()
    assert page.locator("script[src='/static/class_edit.js']").count() == 0
    reader.shot("editor-reader")
    session = next(c["value"] for c in reader.context.cookies() if c["name"] == "ama_session")
    forged = {"csrf": csrf_of(reader), "action": "save", "schema": json.dumps(SCHEMA),
              "forbidden_files": "*"}
    answer = requests.post(site.url + "/p/demo/c/tables/edit", data=forged,
                           cookies={"ama_session": session}, allow_redirects=False, timeout=30)
    assert answer.status_code == 403
    # Nor may a writer; and an admin's session without the CSRF token is refused too.
    writer = browser()
    sign_in(writer, site, "wanda", "/p/demo/c/tables/edit")
    assert writer.page.locator("form.class-editor").count() == 0
    wanda = next(c["value"] for c in writer.context.cookies() if c["name"] == "ama_session")
    answer = requests.post(site.url + "/p/demo/c/tables/edit",
                           data={**forged, "csrf": csrf_of(writer)},
                           cookies={"ama_session": wanda}, allow_redirects=False, timeout=30)
    assert answer.status_code == 403
    answer = requests.post(site.url + "/p/demo/c/tables/edit",
                           data={k: v for k, v in forged.items() if k != "csrf"},
                           cookies={"ama_session": site.tokens["pam"]}, allow_redirects=False,
                           timeout=30)
    assert answer.status_code == 403 and "CSRF" in answer.text
    caller = site.service.authenticate(site.tokens["pam"])
    klass = site.service.get_class(caller, "demo", "tables")
    assert klass["schema"] is None and klass["rules"] == {}


def test_a_member_of_another_project_cannot_even_ask_for_a_check(
        admins: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    sign_in(b, admins, "otto")
    answer = b.page.goto(admins.url + "/p/demo/c/tables/edit")
    assert answer is not None and answer.status == 404
    session = next(c["value"] for c in b.context.cookies() if c["name"] == "ama_session")
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_of(b), "example": "{}"},
                           cookies={"ama_session": session}, timeout=30)
    assert answer.status_code == 404 and "tables" not in answer.text


# -- ama class init NAME --edit ----------------------------------------------------------------

def _recording_browser(tmp_path: Path) -> tuple[dict[str, str], Path]:
    script = tmp_path / "browser.py"
    script.write_text(RECORDER)
    opened = tmp_path / "opened-url"
    return {"BROWSER": f"{sys.executable} {script} %s {opened}"}, opened


def test_ama_class_init_edit_serves_the_editor_of_a_folder_remote(
        clean_env: Path, tmp_path: Path, browser: Callable[[], Browser]) -> None:
    env, opened = _recording_browser(tmp_path)
    # Ctrl-C restored in the child: pytest run in the background from a script starts
    # with SIGINT ignored, and an ignored signal stays ignored across exec.
    process = subprocess.Popen([AMA, "class", "init", "scans", "--edit"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **env}, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        assert lines[0] == "Created class scans\n", lines
        assert lines[1].startswith("Serving the dashboard of file://")
        url = lines[1].split(" at ")[1].strip()
        prefix = "Edit the class at (signs in once): "
        assert lines[2].startswith(prefix + url + "login/once?key=")
        login = lines[2].removeprefix(prefix).strip()
        assert login.endswith(f"&next={urlsplit(url).path}p/default/c/scans/edit")
        assert lines[3] == "Press Ctrl-C to stop.\n"

        # The browser was asked to open a page that leads to the same link, not the link:
        # a browser's command line is for every user of the machine to read (ps), and one
        # of them could sign in with the key before the browser does.
        requests.get(url + "login", timeout=30)  # served once the browser was asked
        given = opened.read_text()
        assert "key=" not in given and given.startswith("file://")
        page_file = Path(urlsplit(given).path)
        assert page_file.stat().st_mode & 0o077 == 0
        assert page_file.parent.stat().st_mode & 0o077 == 0
        assert html.escape(login) in page_file.read_text()
        b = browser()
        b.page.goto(given)
        b.page.wait_for_url(url + "p/default/c/scans/edit")
        # The local user, signed in, may change the class.
        assert b.page.locator("form.class-editor").count() == 1
        b.context.close()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out == "Stopped.\n" and "Traceback" not in err
    assert not page_file.exists()


def test_ama_class_init_and_update_edit_open_the_servers_editor(
        start_ama_server: Callable[..., RunningServer], clean_env: Path,
        tmp_path: Path) -> None:
    server = start_ama_server()
    env, opened = _recording_browser(tmp_path)
    env = {**os.environ, **env, "AMA_TOKEN": server.token, "AMA_PROJECT": server.project}

    def ama(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([AMA, *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        return done

    ama("remote", "add", "team", server.url)
    ama("remote", "default", "team")
    editor = f"{server.url}/p/demo/c/models/edit"
    done = ama("class", "init", "models", "--edit")
    assert done.stdout == f"Created class models\nEdit the class at: {editor}\n"
    assert opened.read_text() == editor
    assert HttpTransport(server.url, token=server.token).get_class("demo", "models")

    opened.unlink()
    done = ama("class", "init", "models", "--edit")  # exists already: the editor all the same
    assert "class 'models' already exists: opening its editor" in done.stdout
    assert opened.read_text() == editor
    assert ama("class", "init", "models", code=1).returncode == 1  # without --edit, refused

    opened.unlink()
    done = ama("class", "update", "models", "--edit")
    assert done.stdout == f"Edit the class at: {editor}\n"
    assert opened.read_text() == editor
    # Without a session, the editor's address asks to sign in first and comes back to it.
    answer = requests.get(editor, allow_redirects=False, timeout=30)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/login?next=%2Fp%2Fdemo%2Fc%2Fmodels%2Fedit"


def _doubling(levels: int) -> dict[str, object]:
    """A schema of a few hundred bytes that applies ``{"type": "object"}`` 2**levels times:
    each level refers twice to the one below."""
    defs: dict[str, object] = {"l0": {"type": "object"}}
    for n in range(1, levels + 1):
        defs[f"l{n}"] = {"allOf": [{"$ref": f"#/$defs/l{n - 1}"}] * 2}
    return {"$defs": defs, "$ref": f"#/$defs/l{levels}"}


def test_a_schema_that_doubles_at_each_ref_does_not_hold_a_worker(admins: Site) -> None:
    # Any reader may ask for a check: with forty levels instead of eighteen, the check would
    # run for days, and so would every commit to a class with that schema.
    schema = _doubling(18)
    reader = admins.tokens["rita"]
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_token(reader), "schema": json.dumps(schema),
                                 "example": "{}"},
                           cookies={"ama_session": reader}, timeout=120)
    assert answer.status_code == 200
    assert answer.json()["errors"] == {}
    verdict = answer.json()["example"]
    assert not verdict["ok"]
    assert verdict["problems"] == [f"schema: checking the metadata takes more than "
                                   f"{MAX_SCHEMA_STEPS} steps; the class schema applies its "
                                   "parts too many times"]
    # Nor may a schema list each of thousands of errors, each repeating the instance.
    listed = {"additionalProperties": {"allOf": [{"type": "string"}] * 50}}
    example = {str(n): list(range(300)) for n in range(20)}
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_token(reader), "schema": json.dumps(listed),
                                 "example": json.dumps(example)},
                           cookies={"ama_session": reader}, timeout=120)
    assert len(answer.json()["example"]["problems"]) == MAX_LISTED


@pytest.mark.parametrize("dialect", ["http://json-schema.org/draft-04/schema#",
                                     "http://json-schema.org/draft-03/schema#"])
def test_a_schema_of_an_older_draft_is_checked_not_a_server_error(
        admins: Site, tmp_path: Path, dialect: str) -> None:
    # Drafts 3 and 4 name a schema by "id", not "$id"; many schemas in use are draft 4.
    schema = {"$schema": dialect, "type": "object",
              "properties": {"n": {"type": "integer"}, "m": {"id": "http://127.0.0.1:9/x",
                                                             "$ref": "y"}}}
    reader = admins.tokens["rita"]
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_token(reader), "schema": json.dumps(schema),
                                 "example": '{"n": "x"}'},
                           cookies={"ama_session": reader}, timeout=30)
    assert answer.status_code == 200
    assert "cannot be resolved" in answer.json()["errors"]["schema"]  # no fetch either
    del schema["properties"]["m"]  # type: ignore[attr-defined]
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_token(reader), "schema": json.dumps(schema),
                                 "example": '{"n": "x"}'},
                           cookies={"ama_session": reader}, timeout=30)
    assert answer.status_code == 200 and answer.json()["errors"] == {}
    assert answer.json()["example"]["problems"] == [
        "schema: metadata n: 'x' is not of type 'integer'"]
    service, admin, _client = in_process(tmp_path)
    assert service.put_class(admin, "demo", "tables", schema=schema)["schema"] == schema
    service.db.dispose()


def test_example_files_against_file_rules_are_checked_within_bounds(admins: Site) -> None:
    # Every pattern is matched against every file: a reader's one form of 64 KB could ask
    # for millions of matches (1,500 patterns and 3,500 files hold a worker 15 s), again
    # and again.
    patterns = "\n".join(f"d{n}/**/x*.bin" for n in range(400))
    files = "\n".join(f"a/b{n}.c" for n in range(MAX_FILE_CHECKS // 400 + 1))
    reader = admins.tokens["rita"]
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_token(reader), "forbidden_files": patterns,
                                 "example_files": files},
                           cookies={"ama_session": reader}, timeout=120)
    assert answer.status_code == 200 and answer.json()["errors"] == {}
    assert answer.json()["files"] == {
        "ok": False, "problems": [],
        "message": f"too many to check here: at most {MAX_FILE_CHECKS} example files times "
                   "file patterns"}
    # Within the bound, the same rules on fewer files are checked.
    few = "\n".join(files.splitlines()[:10]) + "\nd7/e/x1.bin"
    answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                           data={"csrf": csrf_token(reader), "forbidden_files": patterns,
                                 "example_files": few},
                           cookies={"ama_session": reader}, timeout=120)
    assert answer.json()["files"]["problems"] == [
        "forbidden_files: d7/e/x1.bin matches 'd7/**/x*.bin'"]


def test_a_lone_surrogate_in_a_pattern_or_the_metadata_is_an_answer_not_a_server_error(
        admins: Site) -> None:
    # JSON may write "\ud800", which is no character: RE2 reads UTF-8, which has none for it.
    reader = admins.tokens["rita"]

    def check(schema: str, example: str) -> dict[str, Any]:
        answer = requests.post(admins.url + "/p/demo/c/tables/edit/check",
                               data={"csrf": csrf_token(reader), "schema": schema,
                                     "example": example},
                               cookies={"ama_session": reader}, timeout=30)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    found = check('{"properties": {"a": {"pattern": "\\ud800"}}}', "{}")
    assert "is not supported" in found["errors"]["schema"]
    found = check('{"properties": {"a": {"pattern": "^x"}}}', '{"a": "\\ud800"}')
    assert found["example"]["problems"] == ["schema: metadata a: '\\ud800' does not match '^x'"]
