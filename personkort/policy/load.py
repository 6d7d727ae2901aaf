"""Loading policy files: YAML under ``policies/<name>/``, validated in full before use.

A policy is data: a reviewed change of these files changes who sees what. Loading refuses a
broken file with a message naming the file, the line and the problem (``PolicyError``), and the
caller keeps running the version it had. The version is a SHA-256 over every file's name and
bytes, so two offices running the same files run the same version.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from personkort.policy.model import FieldClass, GateStep, Grant, Office, Policy

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "policies" / "default"
FIELD_CLASSES = (
    "identity",
    "contact",
    "follow_up",
    "state_benefit_summary",
    "state_benefit_amounts",
    "health",
    "municipal_service",
    "municipal_free_text",
    "substance_abuse",
)
SERVICES = {"OKSOS", "KVP", "BOLIG", "RUS", "GJELD"}
ROLES = {"veileder", "kode6", "kode7", "skjermet", "forvalter", "revisor"}
WHO = {"everyone", "stat", "kommune", "owner_side"}
PROTECTIONS = {"STRENGT_FORTROLIG", "FORTROLIG"}
RELATIONS = {"parent", "child", "sibling", "partner", "coparent"}  # personkort/feed/kinship.py


class PolicyError(ValueError):
    """A policy file that cannot be used; says which file, which line, and what is wrong."""

    def __init__(self, file: str, line: int | None, problem: str) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.problem = file, line, problem


def policy_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get("PERSONKORT_POLICY_DIR") or DEFAULT_DIR)


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate every file of a policy folder."""
    folder = policy_dir(path)
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.yaml"))}
    for required in ("offices.yaml", "rules.yaml"):
        if required not in files:
            raise PolicyError(str(folder / required), None, "file missing")
    digest = hashlib.sha256()
    for name, text in files.items():
        digest.update(name.encode() + b"\x00" + text.encode() + b"\x00")
    offices_doc = _Doc(str(folder / "offices.yaml"), files["offices.yaml"])
    rules_doc = _Doc(str(folder / "rules.yaml"), files["rules.yaml"])
    offices = _offices(offices_doc)
    rules = rules_doc.data
    rules_doc.expect(rules, dict, ())
    gate = tuple(
        _gate_step(rules_doc, i, s) for i, s in enumerate(rules_doc.get(rules, "gate", list))
    )
    missing = rules_doc.get(rules, "purpose_missing", dict)
    consent = rules_doc.get(rules, "consent", dict)
    scopes = rules_doc.get(consent, "scopes", list, ("consent",))
    classes_raw = rules_doc.get(rules, "field_classes", dict)
    classes = {}
    for name in FIELD_CLASSES:
        if name not in classes_raw:
            raise PolicyError(
                rules_doc.file, rules_doc.line(("field_classes",)), f"field class {name} missing"
            )
    for name, spec in classes_raw.items():
        if name not in FIELD_CLASSES:
            raise PolicyError(
                rules_doc.file,
                rules_doc.line(("field_classes", name)),
                f"unknown field class {name!r}",
            )
        classes[name] = _field_class(rules_doc, name, spec, set(scopes))
    months = rules_doc.get(consent, "max_months", int, ("consent",))
    return Policy(
        version=digest.hexdigest(),
        offices=offices,
        gate=gate,
        purpose_missing_code=rules_doc.get(missing, "code", str, ("purpose_missing",)),
        purpose_missing_message=rules_doc.get(missing, "message", str, ("purpose_missing",)),
        consent_scopes=frozenset(scopes),
        consent_max_months=months,
        classes=classes,
        files=files,
    )


class _Doc:
    """A YAML document with the line of every value, for messages that point at the line."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines: dict[tuple[Any, ...], int] = {}
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc)
            raise PolicyError(
                file, mark.line + 1 if mark else None, f"not valid YAML: {problem}"
            ) from None
        if node is None:
            raise PolicyError(file, 1, "the file is empty")
        self.data = self._python(node, ())

    def _python(self, node: Node, path: tuple[Any, ...]) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value
                if key in out:
                    raise PolicyError(
                        self.file, key_node.start_mark.line + 1, f"duplicate key {key!r}"
                    )
                out[key] = self._python(value_node, (*path, key))
            return out
        if isinstance(node, SequenceNode):
            return [self._python(v, (*path, i)) for i, v in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return SafeConstructor().construct_object(node)

    def line(self, path: tuple[Any, ...]) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def expect(self, value: Any, kind: type, path: tuple[Any, ...]) -> None:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise PolicyError(
                self.file,
                self.line(path),
                f"{'.'.join(map(str, path)) or 'document'} must be {kind.__name__}",
            )

    def get(self, parent: Any, key: str, kind: type, path: tuple[Any, ...] = ()) -> Any:
        if not isinstance(parent, dict) or key not in parent:
            raise PolicyError(
                self.file, self.line(path), f"{'.'.join((*map(str, path), key))} is missing"
            )
        self.expect(parent[key], kind, (*path, key))
        return parent[key]


def _offices(doc: _Doc) -> dict[str, Office]:
    doc.expect(doc.data, dict, ())
    raw = doc.get(doc.data, "offices", dict)
    offices = {}
    for name, spec in raw.items():
        path = ("offices", name)
        municipalities = doc.get(spec, "municipalities", list, path)
        host = doc.get(spec, "host", str, path)
        services = doc.get(spec, "services", list, path)
        for i, number in enumerate(municipalities):
            if not (isinstance(number, str) and len(number) == 4 and number.isdigit()):
                raise PolicyError(
                    doc.file,
                    doc.line((*path, "municipalities", i)),
                    f"municipality {number!r} is not a quoted 4-digit number",
                )
        if host not in municipalities:
            raise PolicyError(
                doc.file,
                doc.line((*path, "host")),
                f"host {host} is not among the office's municipalities",
            )
        for i, service in enumerate(services):
            if service not in SERVICES:
                raise PolicyError(
                    doc.file, doc.line((*path, "services", i)), f"unknown service {service!r}"
                )
        if "OKSOS" not in services:
            raise PolicyError(doc.file, doc.line((*path, "services")), "OKSOS is the legal minimum")
        offices[name] = Office(name, frozenset(municipalities), host, frozenset(services))
    return offices


def _gate_step(doc: _Doc, i: int, spec: Any) -> GateStep:
    path = ("gate", i)
    doc.expect(spec, dict, path)
    roles = spec.get("require_roles_any", [])
    for role in roles:
        if role not in ROLES:
            raise PolicyError(
                doc.file, doc.line((*path, "require_roles_any")), f"unknown role {role!r}"
            )
    protection = spec.get("when_protection")
    if protection is not None and protection not in PROTECTIONS:
        raise PolicyError(
            doc.file, doc.line((*path, "when_protection")), f"unknown protection {protection!r}"
        )
    relatives = spec.get("when_relative", [])
    if not isinstance(relatives, list) or not set(relatives) <= RELATIONS:
        raise PolicyError(
            doc.file,
            doc.line((*path, "when_relative")),
            f"when_relative lists relations among {sorted(RELATIONS)}",
        )
    return GateStep(
        code=doc.get(spec, "code", str, path),
        message=doc.get(spec, "message", str, path),
        require_roles_any=frozenset(roles),
        when_protection=protection,
        when_skjermet=bool(spec.get("when_skjermet", False)),
        when_own_card=bool(spec.get("when_own_card", False)),
        when_relative=frozenset(relatives),
        purpose_required=bool(spec.get("purpose_required", False)),
    )


def _field_class(doc: _Doc, name: str, spec: Any, scopes: set[str]) -> FieldClass:
    path = ("field_classes", name)
    doc.expect(spec, dict, path)
    grants = []
    for i, g in enumerate(doc.get(spec, "allow", list, path)):
        gpath = (*path, "allow", i)
        doc.expect(g, dict, gpath)
        who = g.get("who")
        roles: frozenset[str] = frozenset()
        if isinstance(who, dict):
            roles = frozenset(doc.get(who, "roles_any", list, (*gpath, "who")))
            if bad := roles - ROLES:
                raise PolicyError(
                    doc.file, doc.line((*gpath, "who")), f"unknown role {sorted(bad)[0]!r}"
                )
            who = None
        elif who not in WHO:
            raise PolicyError(doc.file, doc.line((*gpath, "who")), f"unknown who {who!r}")
        consent = g.get("consent")
        if consent is not None and consent not in scopes:
            raise PolicyError(
                doc.file, doc.line((*gpath, "consent")), f"unknown consent scope {consent!r}"
            )
        unless = g.get("unless_protection")
        if unless is not None and unless not in PROTECTIONS:
            raise PolicyError(
                doc.file, doc.line((*gpath, "unless_protection")), f"unknown protection {unless!r}"
            )
        unknown = set(g) - {"who", "consent", "unless_protection"}
        if unknown:
            raise PolicyError(doc.file, doc.line(gpath), f"unknown key {sorted(unknown)[0]!r}")
        grants.append(Grant(who, roles, consent, unless))
    return FieldClass(name, doc.get(spec, "withheld_reason", str, path), tuple(grants))
