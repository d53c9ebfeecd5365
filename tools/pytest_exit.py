"""Run pytest and leave without interpreter teardown.

bpy 4.2's module build can crash while Python shuts down after the tests (a segfault at exit,
with every test passed); leaving through os._exit keeps pytest's own exit status.

    python -m tools.pytest_exit [pytest arguments]
"""
import os
import sys

import pytest

if __name__ == "__main__":
    status = pytest.main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(status))
