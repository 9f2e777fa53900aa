"""Write tests/data/lite_saved_parts.json from workbooks Excel saved with xlwings Lite.

Not a test: the tool that made the reference the structure tests compare with
(tests/test_officejs.py).  The workbooks are read where they lie and never copied
into the project; the JSON holds their structure, never their content (property
values, ids and the task pane's size are marked ``"*"``, see tests/liteparts.py).

Usage (the files of the repositories named in the JSON's ``sources``)::

    cd tests && python lite_shape.py REFERENCE.xlsx FUNCTIONS.xlsx [OTHER_LITE.xlsx ...]

``REFERENCE`` is the Lite-saved book whose parts are the reference structure,
``FUNCTIONS`` a book that calls custom functions (its ``customFunctionIdList``),
the others further Lite-saved books; every Lite-saved book is summarised under
``observed`` (the values that vary between them).  ``about`` and ``sources`` of
the existing JSON are kept.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

from defusedxml import ElementTree as ET

from liteparts import package_facts, shape

OUT = Path(__file__).parent / "data" / "lite_saved_parts.json"
WE = "{http://schemas.microsoft.com/office/webextensions/webextension/2010/11}"
WETP = "{http://schemas.microsoft.com/office/webextensions/taskpanes/2010/11}"
WEBEXTENSION = "xl/webextensions/webextension1.xml"


def observed(path: Path) -> dict:
    """What varies between Lite-saved books: ids' spelling, properties, extLst, pane."""
    with zipfile.ZipFile(path) as z:
        we = ET.fromstring(z.read(WEBEXTENSION))
        pane = ET.fromstring(z.read("xl/webextensions/taskpanes.xml")).find(f"{WETP}taskpane")
    props = {p.get("name"): p.get("value") for p in we.iter(f"{WE}property")}
    return {
        "file": path.name,
        "alternate_reference_id": we.find(f"{WE}alternateReferences/{WE}reference").get("id"),
        "properties": list(props),
        "pyodideVersion": json.loads(props.get("pyodideVersion", "null")),
        "addinVersion": json.loads(props.get("addinVersion", "null")),
        "extLst": [e.get("uri") for e in we.findall(f"{WE}extLst/*")],
        "custom_function_ids": [e.text for e in we.iter(f"{WE}customFunctionIds")],
        "taskpane": {k: pane.get(k) for k in ("dockstate", "visibility", "width", "row")},
    }


def main(argv: list[str]) -> None:
    reference, functions, *others = map(Path, argv)
    old = json.loads(OUT.read_text(encoding="utf-8")) if OUT.exists() else {}
    with zipfile.ZipFile(reference) as z:
        facts = package_facts(z)
        parts = {p: shape(z.read(p)) for p in sorted(facts["parts"], reverse=True)}
    with zipfile.ZipFile(functions) as z:
        ids = next(c for c in shape(z.read(WEBEXTENSION))["children"][-1]["children"]
                   if c["children"] and c["children"][0]["tag"] == "we:customFunctionIdList")
    out = {"about": old.get("about", ""), "sources": old.get("sources", {}),
           "parts": facts, **parts, "customFunctionIdList": ids["children"][0],
           "observed": [observed(p) for p in sorted([reference, *others])]}
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
