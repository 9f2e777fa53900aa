"""Add an extension to a LibreOffice user profile through its ExtensionManager.

Run by LibreOffice's own Python (it needs ``uno``, not ``xl_kpis``)::

    python3 lo_install.py EXTENSION.oxt [PROFILE_URL]

``unopkg add`` does the same through the same service, but refuses to run as
root without ``--shared`` (LibreOffice ``desktop/source/pkgchk/unopkg/
unopkg_app.cxx``); :func:`xl_kpis.libreoffice.install` uses this script for
root.  It starts a headless LibreOffice with the profile, calls
``ExtensionManager.addExtension(url, (), "user", ...)`` approving every
question (a newer or older version of the same extension is replaced), and
closes it.  Exit 0 when the extension is registered, 1 with a message
otherwise.
"""

import os
import subprocess
import sys
import time

import uno
import unohelper
from com.sun.star.task import XInteractionHandler
from com.sun.star.ucb import XCommandEnvironment, XProgressHandler


class _Env(unohelper.Base, XCommandEnvironment, XInteractionHandler, XProgressHandler):
    def getInteractionHandler(self):
        return self

    def getProgressHandler(self):
        return self

    def handle(self, request):
        approve = uno.getTypeByName("com.sun.star.task.XInteractionApprove")
        for c in request.getContinuations():
            if c.queryInterface(approve) is not None:
                c.select()
                return

    def push(self, status):
        pass

    def update(self, status):
        pass

    def pop(self):
        pass


def main(oxt, profile_url=None, timeout=240):
    pipe = "xlkpis_install_%d" % os.getpid()
    cmd = ["soffice", "--headless", "--invisible", "--norestore", "--nologo",
           "--accept=pipe,name=%s;urp;" % pipe]
    if profile_url:
        cmd.insert(1, "-env:UserInstallation=" + profile_url)
    office = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        deadline, ctx = time.time() + timeout, None
        while ctx is None:
            try:
                ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
            except Exception:
                if time.time() > deadline or office.poll() is not None:
                    print("LibreOffice did not start (%s)" % " ".join(cmd), file=sys.stderr)
                    return 1
                time.sleep(0.2)
        mgr = ctx.getValueByName("/singletons/com.sun.star.deployment.ExtensionManager")
        url = uno.systemPathToFileUrl(os.path.abspath(oxt))
        mgr.addExtension(url, (), "user", mgr.createAbortChannel(), _Env())
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        try:
            desktop.terminate()
        except Exception:
            pass                                  # the bridge closes as the office exits
        office.wait(timeout)
        return 0
    except Exception as e:
        print("adding %s failed: %s" % (oxt, e), file=sys.stderr)
        return 1
    finally:
        if office.poll() is None:
            office.kill()
            office.wait()


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
