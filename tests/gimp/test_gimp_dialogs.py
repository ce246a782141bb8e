"""Both procedure dialogs, built by the plug-in's own code in a real GIMP 3 with a (virtual) display.

GIMP's procedure dialog reports on stderr every control without a mnemonic, every mnemonic
used twice (also against its Reset, Cancel and OK buttons), and widget assertion failures
such as ``LibGimpWidgets-CRITICAL gimp_label_spin_set_increments``; none may appear.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import gimp_env  # noqa: E402

PLUGIN_SOURCE = ROOT / "gimp_plugin" / "tinct_colorize"
BUILD = """
import importlib.util, json, sys
sys.path.insert(0, PARAMS["plugin_source"])
import gi
gi.require_version("GimpUi", "3.0")
from gi.repository import Gimp, GimpUi
spec = importlib.util.spec_from_file_location("tinct_options", PARAMS["options"])
options = importlib.util.module_from_spec(spec)
sys.modules["tinct_options"] = options
spec.loader.exec_module(options)
import tinct_dialog
GimpUi.init("tinct-dialog-test")
built = {}
for name, names in (("plug-in-tinct-colorize", tinct_dialog.COLORIZE_OPTIONS),
                    ("plug-in-tinct-colorize-animation", tinct_dialog.ANIMATION_OPTIONS)):
    procedure = Gimp.get_pdb().lookup_procedure(name)
    dialog = tinct_dialog.build_dialog(procedure, procedure.create_config(), name, names, options.OPTIONS)
    built[name] = True  # the widgets exist now (showing needs GIMP's own window, absent in gimp-console)
    dialog.destroy()
with open(PARAMS["out"], "w") as handle:
    json.dump(built, handle)
"""


def test_dialogs_have_distinct_mnemonics_and_no_widget_warnings(gimp3):
    gimp_env.ensure_chroot_packages(gimp3, ["xvfb", "xauth"])
    with gimp_env.gimp3_session(gimp3) as session:
        display = next(n for n in random.sample(range(100, 900), 50)
                       if not session.host_path(f"/tmp/.X11-unix/X{n}").exists())
        server = subprocess.Popen(session.command(["Xvfb", f":{display}", "-nolisten", "tcp", "-screen", "0",
                                                   "1280x1024x24"], {"PATH": "/usr/bin:/bin"}),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not session.host_path(f"/tmp/.X11-unix/X{display}").exists():
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
                time.sleep(0.1)
            out = session.new_dir("dialogs-") / "built.json"
            params = {"plugin_source": str(PLUGIN_SOURCE), "options": str(ROOT / "core" / "options.py"),
                      "out": str(out)}
            code = f"PARAMS = {json.dumps(params)!r}\nimport json\nPARAMS = json.loads(PARAMS)\n" + BUILD
            done = session.run_batch(code, plugin_dirs=[ROOT / "gimp_plugin"], env={"DISPLAY": f":{display}"})
        finally:
            server.terminate()
            server.wait(10)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(session.host_path(out).read_text()) == {"plug-in-tinct-colorize": True,
                                                                  "plug-in-tinct-colorize-animation": True}
    # "(gimp:PID) ... g_object_unref" comes from GIMP's core process in console mode once GimpUi was
    # initialised in the batch interpreter, with or without Tinct's dialogs: only the dialog process counts.
    problems = [line for line in done.stderr.splitlines()
                if ("CRITICAL" in line or "mnemonic" in line) and not line.startswith("(gimp:")]
    assert not problems, "\n".join(problems)
