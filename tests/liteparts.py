"""The structure of the xlwings Lite parts of a workbook, to compare with what Excel saved.

:func:`shape` turns a part's XML into its elements, attributes and text with
the values that differ from book to book marked ``"*"`` (ids, the store
locale, the task pane's size, property values); :func:`package_facts` lists
the web-extension parts, their content types and the package relationship.
``tests/data/lite_saved_parts.json`` holds both for workbooks Excel saved with
xlwings Lite (its ``sources`` say which); :func:`differences` compares.
"""

from __future__ import annotations

import re
import zipfile
from typing import Any

from defusedxml import ElementTree as ET

PREFIXES = {
    "http://schemas.microsoft.com/office/webextensions/webextension/2010/11": "we",
    "http://schemas.microsoft.com/office/webextensions/taskpanes/2010/11": "wetp",
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships": "r",
    "http://schemas.openxmlformats.org/drawingml/2006/main": "a",
    "http://schemas.openxmlformats.org/package/2006/relationships": "rel",
}
#: (element, attribute) whose value differs from book to book.
VARIABLE = {("we:webextension", "id"), ("we:property", "value"), ("wetp:taskpane", "width"),
            ("wetp:taskpane", "row")}
#: The main reference's store is the locale of whoever saved the book (en-IN, en-US ...).
VARIABLE_IN = {("we:reference", "store", "we:webextension")}


def _q(name: str) -> str:
    m = re.match(r"\{([^}]*)\}(.*)", name)
    return f"{PREFIXES.get(m.group(1), m.group(1))}:{m.group(2)}" if m else name


def shape(xml: bytes) -> dict[str, Any]:
    """A part's elements as nested dicts: ``tag``, ``attrs`` (variable values as "*"),
    ``text`` (custom function ids as ``_xldudf_*``), ``children``."""
    return _shape(ET.fromstring(xml), "")


def _shape(e, parent: str) -> dict[str, Any]:
    tag = _q(e.tag)
    attrs = {}
    for k, v in sorted(e.attrib.items()):
        k = _q(k)
        variable = (tag, k) in VARIABLE or (tag, k, parent) in VARIABLE_IN
        attrs[k] = "*" if variable else v
    out: dict[str, Any] = {"tag": tag, "attrs": attrs}
    text = (e.text or "").strip()
    if text:
        out["text"] = "_xldudf_*" if text.startswith("_xldudf_") else text
    out["children"] = [_shape(c, tag) for c in e]
    return out


def package_facts(z: zipfile.ZipFile) -> dict[str, Any]:
    """The web-extension parts of a package, their content types and package relationships."""
    types = ET.fromstring(z.read("[Content_Types].xml"))
    rels = ET.fromstring(z.read("_rels/.rels"))
    return {
        "parts": sorted(n for n in z.namelist() if n.startswith("xl/webextensions/")),
        "content_types": {o.get("PartName"): o.get("ContentType") for o in types
                          if "webextension" in (o.get("PartName") or "")},
        "package_relationships": sorted(
            [r.get("Type"), r.get("Target")] for r in rels if "webextension" in r.get("Type")),
    }


def differences(want: Any, got: Any, path: str = "") -> list[str]:
    """Where ``got`` differs from ``want``, element by element (``path: want != got``).

    Repeated children of the same tag (property entries, function ids) are
    compared one by one in order; a missing or extra child is one difference.
    """
    if isinstance(want, dict) and isinstance(got, dict) and "tag" in want:
        if want["tag"] != got.get("tag"):
            return [f"{path}: element {want['tag']} != {got.get('tag')}"]
        here = f"{path}/{want['tag']}"
        out = []
        for k in sorted(set(want["attrs"]) | set(got["attrs"])):
            a, b = want["attrs"].get(k), got["attrs"].get(k)
            if a != b:
                out.append(f"{here}@{k}: {a!r} != {b!r}")
        if want.get("text") != got.get("text"):
            out.append(f"{here} text: {want.get('text')!r} != {got.get('text')!r}")
        wc, gc = want["children"], got["children"]
        for i in range(max(len(wc), len(gc))):
            if i >= len(wc):
                out.append(f"{here}: extra child {gc[i]['tag']}")
            elif i >= len(gc):
                out.append(f"{here}: missing child {wc[i]['tag']}")
            else:
                out += differences(wc[i], gc[i], here)
        return out
    return [] if want == got else [f"{path}: {want!r} != {got!r}"]
