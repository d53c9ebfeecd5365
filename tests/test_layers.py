"""Dependencies point one way: motioncore needs neither torch nor bpy; backend never imports bpy."""
import subprocess
import sys

import pytest

from conftest import ROOT

BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import {module}
{extra}
print('ok')
"""


@pytest.mark.parametrize("module, blocked, extra", [
    ("motioncore", ["torch", "bpy", "transformers", "scipy"],
     "import motioncore.features, motioncore.canonical, motioncore.bvh"),
    ("backend", ["bpy"], "import backend.dataset, backend.cli, backend.captions"),
])
def test_import_with_forbidden_modules_blocked(module, blocked, extra):
    code = BLOCKER.format(blocked=blocked, module=module, extra=extra)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
