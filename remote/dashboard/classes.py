"""The class editor: a class's metadata schema, file rules, tag and title rules and
visualisation rules, as a form for those who may change the class (the project's admins)
and as a read-only page for its other members.

Every check runs here, in Python, with the code the server runs on a commit or a class
change (:mod:`ama.plumbing.rules`, jsonschema, :func:`~ama.plumbing.jsontext.parse_json`):
the page's script only posts the form to ``…/edit/check`` as it is typed and shows the
answers next to the fields, so a rule the editor accepts is a rule the server accepts, and
example metadata and example files it passes are what a commit passes. Without JavaScript
the "Check" button asks the same question and the page shows the same answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import falcon

from ama.plumbing.errors import BadInput
from ama.plumbing.jsontext import parse_json
from ama.plumbing.rules import (
    RULE_KEYS,
    VIEWERS,
    check_rules,
    check_schema,
    check_visualisation,
    rule_problems,
)
from ama_remote.dashboard.pages import Page, _Request, href

# The rules the form shows as lists (one pattern a line) and as single values.
LIST_RULES = ("required_files", "forbidden_files")
VALUE_RULES = tuple(k for k in RULE_KEYS if k not in LIST_RULES)
FIELDS = ("description", "schema", *RULE_KEYS, "visualisation", "example", "example_files")
FILE_RULES = ("required_files", "forbidden_files", "max_total_size", "max_file_size",
              "max_file_count")
# Each file pattern is matched against each example file: a form of 64 KB could otherwise
# ask for millions of matches, and any member may send it again and again.
MAX_FILE_CHECKS = 100_000


@dataclass
class Examined:
    """What the form says, checked: the class it would save, and what is wrong."""

    schema: dict[str, Any] | None = None
    rules: dict[str, Any] = field(default_factory=dict)
    visualisation: Any = None
    errors: dict[str, str] = field(default_factory=dict)  # field -> the server's message
    example: dict[str, Any] | None = None  # {"ok", "message", "problems"}
    files: dict[str, Any] | None = None  # the same, for the example files

    def answer(self) -> dict[str, Any]:
        return {"errors": self.errors, "example": self.example, "files": self.files}


def _json_field(text: str, what: str) -> Any:
    return parse_json(text, what) if text.strip() else None


def examine(form: dict[str, str]) -> Examined:
    """Read the editor's fields and check each with the server's own code: the schema,
    each rule alone (so that a message lands next to its field), the visualisation rules,
    and the example metadata against the schema."""
    found = Examined()
    try:
        found.schema = check_schema(_json_field(form.get("schema", ""), "the schema"))
    except BadInput as e:
        found.errors["schema"] = e.message
    for key in RULE_KEYS:
        text = form.get(key, "")
        value: Any
        if key in LIST_RULES:
            value = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            text = text.strip()
            # A number is a number; anything else goes to the check as typed, which says
            # what the rule needs.
            value = int(text) if text.isascii() and text.isdigit() and len(text) < 19 \
                else text
        if value in ("", []):
            continue
        try:
            check_rules({key: value})
        except BadInput as e:
            found.errors[key] = e.message
            continue
        found.rules[key] = value
    try:
        found.visualisation = _json_field(form.get("visualisation", ""), "visualisation rules")
        check_visualisation(found.visualisation)
    except BadInput as e:
        found.errors["visualisation"] = e.message
    found.example = _example(form.get("example", ""), found)
    found.files = _example_files(form.get("example_files", ""), found)
    return found


def _verdict(problems: list[str], passes: str) -> dict[str, Any]:
    if problems:
        return {"ok": False, "message": f"the example breaks {len(problems)} rule(s)",
                "problems": problems}
    return {"ok": True, "message": passes, "problems": []}


def _example_files(text: str, found: Examined) -> dict[str, Any] | None:
    """The file rules' verdict on example files, one "PATH SIZE" (bytes) or "PATH" a line."""
    files = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        path, _, size = line.rpartition(" ")
        if not path.strip() or not (size.isascii() and size.isdigit()):
            path, size = line, "0"
        files.append((path.strip(), "", int(size)))
    if not files:
        return None
    if any(key in found.errors for key in FILE_RULES):
        return {"ok": False, "message": "fix the file rules first", "problems": []}
    patterns = sum(len(found.rules.get(key, [])) for key in LIST_RULES)
    if patterns * len(files) > MAX_FILE_CHECKS:
        return {"ok": False, "problems": [],
                "message": f"too many to check here: at most {MAX_FILE_CHECKS} example files "
                           "times file patterns"}
    return _verdict(rule_problems(None, found.rules, {}, files),
                    "the example files pass the file rules")


def _example(text: str, found: Examined) -> dict[str, Any] | None:
    if not text.strip():
        return None
    try:
        metadata = parse_json(text, "the example metadata")
    except BadInput as e:
        return {"ok": False, "message": e.message, "problems": []}
    if "schema" in found.errors:
        return {"ok": False, "message": "fix the schema first", "problems": []}
    if found.schema is None:
        return {"ok": True, "message": "no schema: any metadata passes", "problems": []}
    if not isinstance(metadata, dict):
        return {"ok": False, "message": "metadata is a JSON object", "problems": []}
    return _verdict(rule_problems(found.schema, None, metadata, []),
                    "the example passes the schema")


def _form_of(klass: dict[str, Any]) -> dict[str, str]:
    """The editor's fields for a class as stored."""
    def shown(value: Any) -> str:
        return json.dumps(value, indent=2, ensure_ascii=False) if value else ""

    rules = klass.get("rules") or {}
    form = {"description": klass.get("description") or "", "schema": shown(klass["schema"]),
            "visualisation": shown(klass.get("visualisation")), "example": "",
            "example_files": ""}
    for key in RULE_KEYS:
        value = rules.get(key)
        form[key] = ("\n".join(value) if key in LIST_RULES and value
                     else "" if value is None else str(value))
    return form


class ClassEditor(Page):
    """``/p/PROJECT/c/CLASS/edit``: the form (project admins) or the rules (the others)."""

    def get(self, request: _Request, resp: falcon.Response, project: str, cls: str) -> None:
        klass = self.service.get_class(request.caller, project, cls)
        self._show(request, resp, project, klass, _form_of(dict(klass)), Examined(),
                   saved=request.param("saved") == "1")

    def post(self, request: _Request, resp: falcon.Response, project: str, cls: str) -> None:
        klass = self.service.get_class(request.caller, project, cls)
        form = {k: request.form.get(k, "") for k in FIELDS}
        found = examine(form)
        if request.form.get("action") == "save" and not found.errors:
            try:
                self.service.put_class(request.caller, project, cls, form["description"],
                                       found.schema, found.rules or None,
                                       found.visualisation)
            except BadInput as e:
                found.errors["class"] = e.message
            else:
                self.redirect(href("p", project, "c", cls, "edit", saved="1"))
        self._show(request, resp, project, klass, form, found,
                   status=400 if found.errors else 200)

    def _show(self, request: _Request, resp: falcon.Response, project: str,
              klass: Any, form: dict[str, str], found: Examined, status: int = 200,
              saved: bool = False) -> None:
        can_edit = self.may(self.role(request, project), "admin")
        self.dash.render(resp, "class_edit.html", request, status=status, project=project,
                         klass=klass, form=form, found=found, can_edit=can_edit, saved=saved,
                         list_rules=LIST_RULES, viewers=VIEWERS)


class Check(Page):
    """``/p/PROJECT/c/CLASS/edit/check``: the editor's fields checked, as JSON, for the
    page's script (any member may ask: it changes nothing)."""

    def post(self, request: _Request, resp: falcon.Response, project: str, cls: str) -> None:
        self.service.get_class(request.caller, project, cls)  # NotFound for outsiders
        resp.media = examine({k: request.form.get(k, "") for k in FIELDS}).answer()
