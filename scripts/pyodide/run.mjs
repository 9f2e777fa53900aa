// The Pyodide test lane, in one Node process (tests/test_pyodide.py runs it; see lane.py).
//
//   node scripts/pyodide/run.mjs CONFIG.json
//
// CONFIG names what scripts/pyodide/fetch.py checked: {"index": the unpacked Pyodide core with
// the lock-checked wheels beside it, "packages": lock packages to load, "wheels": pure wheels
// and the project's own, "repo": the checkout, mounted at /repo for its tests (lane.py writes
// nothing there), "env": environment of the Python inside, "args": extra pytest arguments}.
// Loads Pyodide from the cache (no network), loads numpy/scipy/micropip from the lock,
// micropip-installs the wheels from Pyodide's in-memory file system without resolving
// anything, then runs lane.py, whose exit code becomes this process's.
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const here = dirname(fileURLToPath(import.meta.url));
const t0 = performance.now();
const seconds = () => ((performance.now() - t0) / 1000).toFixed(1);
const write = (stream) => ({
  write: (buf) => {
    stream.write(buf);
    return buf.length;
  },
});

const { loadPyodide } = await import(pathToFileURL(join(config.index, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ indexURL: config.index + "/", env: config.env });
pyodide.setStdout(write(process.stdout));
pyodide.setStderr(write(process.stderr));
await pyodide.loadPackage(config.packages, { messageCallback: () => {} });
const loaded = seconds();

pyodide.FS.mkdirTree("/wheels");
const urls = config.wheels.map((path) => {
  const target = "/wheels/" + basename(path);
  pyodide.FS.writeFile(target, readFileSync(path));
  return "emfs:" + target;
});
const micropip = pyodide.pyimport("micropip");
await micropip.install.callKwargs(urls, { deps: false });
micropip.destroy();
const installed = seconds();

pyodide.FS.mkdirTree("/repo");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: config.repo }, "/repo");
pyodide.globals.set("LANE_ARGS", pyodide.toPy(config.args));
console.log(`pyodide lane: Pyodide ${pyodide.version} and numpy/scipy loaded in ${loaded} s, ` +
            `${urls.length} wheels installed by ${installed} s`);
let code;
try {
  code = await pyodide.runPythonAsync(readFileSync(join(here, "lane.py"), "utf8"));
} catch (err) {
  console.error(String(err));
  code = 3;
}
console.log(`pyodide lane: done in ${seconds()} s (exit code ${code})`);
process.exit(code);
