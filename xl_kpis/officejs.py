"""How Excel stores Office.js custom functions (xlwings Lite) in a workbook file.

The one place for these format facts; everything that writes or reads the
spelling of a function call, or the add-in parts of a workbook, uses it.
Standard library only (it runs in xlwings Lite too, where the fallback
script of :mod:`xl_kpis.lite` uses :func:`plain`).

Spelling of a call
------------------
Excel saves a call of an Office.js custom function with the prefix
``_xldudf_`` and the namespace joined by ``_``: ``NS.ADD(1,2)`` is stored as
``_xldudf_NS_ADD(1,2)``.  xlwings Lite has no namespace, so ``ROAS(B2,C2)``
is stored as ``_xldudf_ROAS(B2,C2)``.  Outside a table such a cell is a
single-cell dynamic-array formula: ``<c r="A1" cm="1"><f t="array"
ref="A1">_xldudf_ROAS(B2,C2)</f><v>3</v></c>`` (``cm`` points at the XLDAPR
cell metadata of ``xl/metadata.xml``).  A classic xlwings (VBA) function is
stored with its plain name.  (Seen in workbooks Excel saved: the
``Custom Functions Protected Sheet Repro.xlsx`` of the public repository
``evelyn-chrono/officejs-custom-functions-name-error-repro``.)

The add-in parts
----------------
A workbook that xlwings Lite saved names the add-in and carries its code in
``xl/webextensions/webextension1.xml`` (:func:`webextension_xml`), referenced
from ``xl/webextensions/taskpanes.xml`` (:func:`taskpanes_xml`) through its
rels part, with content-type overrides and a package relationship
(:func:`add_webextension`).  The add-in is the Office store item
``wa200008175``; the properties ``main.py``, ``requirements.txt``,
``pyodideVersion`` and ``addinVersion`` hold JSON-encoded strings
(:func:`property_value`); an extension lists the custom functions the
workbook calls.  (Seen in six workbooks xlwings Lite saved, in the public
repository ``amararun/xlwings-lite-apps-codes-docs``.)
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Iterable, Mapping

__all__ = ["PREFIX", "stored_name", "plain_name", "plain", "stored", "called_functions",
           "ADDIN_ID", "ADDIN_STORE", "ADDIN_STORE_TYPE", "ADDIN_VERSION", "PYODIDE_VERSION",
           "WEBEXTENSION_PART", "TASKPANES_PART", "TASKPANES_RELS_PART", "property_value",
           "webextension_xml", "taskpanes_xml", "taskpanes_rels_xml", "add_webextension"]

# --- the spelling of a call ---------------------------------------------------------

#: The prefix Excel stores before the name of an Office.js custom function.
PREFIX = "_xldudf_"


def stored_name(name: str, namespace: str | None = None) -> str:
    """The name Excel stores for a call of the custom function ``name``.

    >>> stored_name("ROAS"), stored_name("ADD", "CONTOSO")
    ('_xldudf_ROAS', '_xldudf_CONTOSO_ADD')
    """
    return PREFIX + (f"{namespace}_{name}" if namespace else name)


def plain_name(name: str) -> str:
    """A function name without the stored prefix (any letter case), as typed in Excel.

    Without a namespace (xlwings Lite) the rest is the name itself.

    >>> plain_name("_xldudf_ROAS"), plain_name("_XLDUDF_roas"), plain_name("SUM")
    ('ROAS', 'roas', 'SUM')
    """
    return name[len(PREFIX):] if name[:len(PREFIX)].lower() == PREFIX else name


# A function name just before "(", with the stored prefix; string literals are skipped.
_STRING_OR_CALL = re.compile(r'"(?:[^"]|"")*"|(?<![\w.])' + PREFIX + r"(?=[A-Za-z_][\w.]*\()",
                             re.I)


def plain(formula: str) -> str:
    """A formula text with every stored custom-function name in its plain spelling.

    Text inside string literals is left as it is.

    >>> plain('=_xldudf_ROAS(B2,C2)+_xldudf_CLV(1,2,3)')
    '=ROAS(B2,C2)+CLV(1,2,3)'
    >>> plain('=IF(A1="_xldudf_X(",_XLDUDF_ctr(1,2),"")')
    '=IF(A1="_xldudf_X(",ctr(1,2),"")'
    """
    return _STRING_OR_CALL.sub(lambda m: m.group(0) if m.group(0).startswith('"') else "",
                               formula)


# A function name just before "(", without the stored prefix; string literals are skipped.
_STRING_OR_PLAIN_CALL = re.compile(r'"(?:[^"]|"")*"|(?<![\w.])([A-Za-z_][\w.]*)(?=\()')


def stored(formula: str, names: Iterable[str]) -> str:
    """A formula text with every call of one of ``names`` (plain names, any letter case in
    the formula) in the stored spelling; the inverse of :func:`plain` for those names.

    Text inside string literals, other names and calls already stored are left as they are.

    >>> stored('=ROAS(B2,C2)+roas(1,2)+SUM(1)&"CTR("', {"ROAS", "CTR"})
    '=_xldudf_ROAS(B2,C2)+_xldudf_roas(1,2)+SUM(1)&"CTR("'
    >>> stored('=_xldudf_ROAS(1,2)', {"ROAS"})
    '=_xldudf_ROAS(1,2)'
    """
    upper = {n.upper() for n in names}

    def one(m: re.Match) -> str:
        name = m.group(1)
        return PREFIX + name if name is not None and name.upper() in upper else m.group(0)

    return _STRING_OR_PLAIN_CALL.sub(one, formula)


_CALL = re.compile(r'"(?:[^"]|"")*"|(?<![\w.])([A-Za-z_][\w.]*)\(')


def called_functions(formula: str) -> set[str]:
    """The names of the functions a formula calls, in their plain spelling, upper case.

    >>> sorted(called_functions('=_xldudf_ROAS(SUM(A1:A3),"CTR(")'))
    ['ROAS', 'SUM']
    """
    return {plain_name(m.group(1)).upper() for m in _CALL.finditer(formula) if m.group(1)}


# --- the add-in parts -------------------------------------------------------------------

#: xlwings Lite in the Office store, as Excel references it.
ADDIN_ID = "wa200008175"
#: The id and store of the alternate reference (the item id in upper case; three of the six
#: Lite-saved books write the id in lower case there, as in the main reference).
ADDIN_STORE = "WA200008175"
ADDIN_STORE_TYPE = "OMEX"
#: The store locale of the main reference (Excel writes the saving user's locale).
STORE_LOCALE = "en-US"
#: The version properties Lite stores: the values most of the Lite-saved workbooks hold.
#: xlwings Lite writes its own when it saves the workbook again.
PYODIDE_VERSION = "0.27.5"
ADDIN_VERSION = "1.0.0.0-18"
#: The id of the web extension element: fixed, so that a build is reproducible.
WEBEXTENSION_GUID = "{" + str(uuid.uuid5(uuid.NAMESPACE_URL,
                                          "https://github.com/xl-kpis/xlwings-lite")).upper() + "}"
#: The Lite task pane's width in points, as Lite saves it.
TASKPANE_WIDTH = 438

WEBEXTENSION_PART = "xl/webextensions/webextension1.xml"
TASKPANES_PART = "xl/webextensions/taskpanes.xml"
TASKPANES_RELS_PART = "xl/webextensions/_rels/taskpanes.xml.rels"

NS_WE = "http://schemas.microsoft.com/office/webextensions/webextension/2010/11"
NS_WETP = "http://schemas.microsoft.com/office/webextensions/taskpanes/2010/11"
NS_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
NS_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
REL_TASKPANES = "http://schemas.microsoft.com/office/2011/relationships/webextensiontaskpanes"
REL_WEBEXTENSION = "http://schemas.microsoft.com/office/2011/relationships/webextension"
CT_WEBEXTENSION = "application/vnd.ms-office.webextension+xml"
CT_TASKPANES = "application/vnd.ms-office.webextensiontaskpanes+xml"
#: extLst entries of the web extension element.
EXT_CONTAINS_CUSTOM_FUNCTIONS = "{D87F86FE-615C-45B5-9D79-34F1136793EB}"
EXT_CUSTOM_FUNCTION_IDS = "{7C84B067-C214-45C3-A712-C9D94CD141B2}"

_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def property_value(text: str) -> str:
    r"""A ``we:property`` value as Excel writes it (before XML escaping): a JSON string
    with ``/`` escaped as ``\/`` and every other character as it is.

    >>> print(property_value('print("a/b")\n'))
    "print(\"a\/b\")\n"
    """
    return json.dumps(text, ensure_ascii=False).replace("/", "\\/")


def _attr(value: str) -> str:
    """An XML attribute value in double quotes, as Excel escapes it (``"`` ``&`` ``<`` ``>``)."""
    from xml.sax.saxutils import escape      # (here: it loads urllib, which evaluating never needs)

    return '"' + escape(value, {'"': "&quot;"}) + '"'


def webextension_xml(properties: Mapping[str, str], function_ids: Iterable[str]) -> bytes:
    """``xl/webextensions/webextension1.xml`` naming xlwings Lite.

    Parameters
    ----------
    properties : mapping
        ``name -> text`` of the ``we:property`` entries in order (``main.py``,
        ``pyodideVersion``, ``addinVersion``, ``requirements.txt``); each value
        is stored JSON-encoded (:func:`property_value`).
    function_ids : iterable of str
        The stored names (``_xldudf_ROAS``) of the custom functions the
        workbook calls, listed in the ``customFunctionIdList`` extension.
    """
    from xml.sax.saxutils import escape

    props = "".join(f"<we:property name={_attr(k)} value={_attr(property_value(v))}/>"
                    for k, v in properties.items())
    ids = "".join(f"<we:customFunctionIds>{escape(i)}</we:customFunctionIds>"
                  for i in function_ids)
    id_list = (f"<we:customFunctionIdList>{ids}</we:customFunctionIdList>" if ids
               else "<we:customFunctionIdList/>")
    ref = 'version="1.0.0.0" store="{}" storeType="{}"'
    xml = (
        f'{_XML_DECL}<we:webextension xmlns:we="{NS_WE}" id="{WEBEXTENSION_GUID}">'
        f'<we:reference id="{ADDIN_ID}" {ref.format(STORE_LOCALE, ADDIN_STORE_TYPE)}/>'
        f'<we:alternateReferences><we:reference id="{ADDIN_STORE}" '
        f'{ref.format(ADDIN_STORE, ADDIN_STORE_TYPE)}/></we:alternateReferences>'
        f"<we:properties>{props}</we:properties><we:bindings/>"
        f'<we:snapshot xmlns:r="{NS_R}"/>'
        f'<we:extLst><a:ext xmlns:a="{NS_A}" uri="{EXT_CONTAINS_CUSTOM_FUNCTIONS}">'
        f"<we:containsCustomFunctions/></a:ext>"
        f'<a:ext xmlns:a="{NS_A}" uri="{EXT_CUSTOM_FUNCTION_IDS}">{id_list}</a:ext>'
        f"</we:extLst></we:webextension>")
    return xml.encode("utf-8")


def taskpanes_xml() -> bytes:
    """``xl/webextensions/taskpanes.xml``: the Lite task pane, docked right, closed."""
    return (f'{_XML_DECL}<wetp:taskpanes xmlns:wetp="{NS_WETP}"><wetp:taskpane '
            f'dockstate="right" visibility="0" width="{TASKPANE_WIDTH}" row="0">'
            f'<wetp:webextensionref xmlns:r="{NS_R}" r:id="rId1"/></wetp:taskpane>'
            f"</wetp:taskpanes>").encode("utf-8")


def taskpanes_rels_xml() -> bytes:
    """The rels part of ``taskpanes.xml``: ``rId1`` is the web extension."""
    return (f'{_XML_DECL}<Relationships xmlns="{NS_RELS}"><Relationship Id="rId1" '
            f'Type="{REL_WEBEXTENSION}" Target="webextension1.xml"/></Relationships>'
            ).encode("utf-8")


def _insert_before_end(xml: bytes, end_tag: bytes, element: bytes) -> bytes:
    at = xml.rindex(end_tag)
    return xml[:at] + element + xml[at:]


def _free_rel_id(rels: bytes) -> str:
    used = set(re.findall(rb'\bId="rId(\d+)"', rels))
    n = 1
    while str(n).encode() in used:
        n += 1
    return f"rId{n}"


def add_webextension(parts: Mapping[str, bytes], properties: Mapping[str, str],
                     function_ids: Iterable[str]) -> dict[str, bytes]:
    """The parts of a workbook package with the xlwings Lite parts added.

    ``parts`` maps zip member names to their bytes (``[Content_Types].xml``
    and ``_rels/.rels`` among them); the result has the three add-in parts
    (after ``xl/``'s other parts, before ``docProps``), their content-type
    overrides and the package relationship to ``taskpanes.xml``.  A package
    that has web-extension parts already is refused (ValueError).
    """
    if any(name.startswith("xl/webextensions/") for name in parts):
        raise ValueError("the package has web extension parts already")
    types = parts["[Content_Types].xml"]
    for part, ct in ((TASKPANES_PART, CT_TASKPANES), (WEBEXTENSION_PART, CT_WEBEXTENSION)):
        types = _insert_before_end(types, b"</Types>",
                                   f'<Override PartName="/{part}" ContentType="{ct}"/>'.encode())
    rels = parts["_rels/.rels"]
    rels = _insert_before_end(rels, b"</Relationships>", (
        f'<Relationship Id="{_free_rel_id(rels)}" Type="{REL_TASKPANES}" '
        f'Target="{TASKPANES_PART}"/>').encode())
    new = {WEBEXTENSION_PART: webextension_xml(properties, function_ids),
           TASKPANES_PART: taskpanes_xml(), TASKPANES_RELS_PART: taskpanes_rels_xml()}
    out: dict[str, bytes] = {}
    for name, data in parts.items():
        if name.startswith("docProps/") and new:
            out.update(new)
            new = {}
        out[name] = types if name == "[Content_Types].xml" else \
            rels if name == "_rels/.rels" else data
    out.update(new)
    return out
