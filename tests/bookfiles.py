"""Small file helpers the workbook tests share."""

import signal
import subprocess
import sys
import textwrap
import zipfile


def copy(src, dst):
    """Copy the file ``src`` to ``dst`` (a Path) and return ``dst``."""
    dst.write_bytes(src.read_bytes())
    return dst


def parts(path):
    """Every zip member of a workbook: ``{name: bytes}``."""
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def kill_while_writing(code: str) -> None:
    """Run ``code`` in a child process whose zip writing stalls after its first member,
    and kill it (SIGKILL) once the new file is half written."""
    script = textwrap.dedent("""
        import time, zipfile
        real = zipfile.ZipFile.writestr
        def slow(self, *a, **k):
            real(self, *a, **k)
            print("writing", flush=True)
            time.sleep(60)
        zipfile.ZipFile.writestr = slow
    """) + textwrap.dedent(code)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
