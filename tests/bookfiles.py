"""Small file helpers the workbook tests share."""

import zipfile


def copy(src, dst):
    """Copy the file ``src`` to ``dst`` (a Path) and return ``dst``."""
    dst.write_bytes(src.read_bytes())
    return dst


def parts(path):
    """Every zip member of a workbook: ``{name: bytes}``."""
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}
