"""The token prompt (a CTC head over the LLM vocabulary whose posteriors mix the LLM's own embeddings into the soft
prompt), its anneal, the audio-dependence gap logged during training, and LoRA carried from stage 2 into
instruction tuning: on the tiny random model, a few steps each."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from mint.cli import main
from mint.training.corpus import QUICK_SOURCES, build


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    out, _ = build(tmp_path_factory.mktemp("corpus") / "corpus", max_per_source=8, sources=QUICK_SOURCES)
    return out


@pytest.fixture(scope="module")
def token_prompt_dir(tiny_model_dir, tmp_path_factory):
    """The tiny random model, windowed (4 queries per 5 frames), with the CTC head and the mix at 1."""
    out = tmp_path_factory.mktemp("models") / "token-prompt"
    shutil.copytree(tiny_model_dir, out)
    for name in ("config.json", "processor_config.json"):
        config = json.loads((out / name).read_text())
        config["bridge_window_frames"] = 5
        if name == "config.json":
            config["token_prompt_mix"] = 1.0
        (out / name).write_text(json.dumps(config))
    return out


def test_mix_ends_are_the_projection_and_the_posterior_embeddings(token_prompt_dir):
    from modeling_mint import MintForConditionalGeneration

    model = MintForConditionalGeneration.from_pretrained(token_prompt_dir).model
    projected = torch.randn(7, model.config.text_config.hidden_size)
    embeddings = model.language_model.get_input_embeddings().weight
    posteriors = model.token_posteriors(projected)
    assert posteriors.shape == (7, embeddings.shape[0] + 1)
    torch.testing.assert_close(posteriors.sum(-1), torch.ones(7))
    model.config.token_prompt_mix = 0.0
    assert torch.equal(model.mix_token_prompt(projected), projected)
    model.config.token_prompt_mix = 1.0
    torch.testing.assert_close(model.mix_token_prompt(projected), posteriors[:, :-1] @ embeddings)
    # a head sure of one token hands the LLM that token's own embedding
    with torch.no_grad():
        model.ctc_log_scale.fill_(10.0)
    sure = embeddings[5:6] * 3
    torch.testing.assert_close(model.mix_token_prompt(sure), embeddings[5:6], atol=1e-3, rtol=0)


def test_token_bags_sum_what_the_ctc_head_hears_per_clip(token_prompt_dir, tiny_model_dir):
    """A clip's bag is its audio tokens' posteriors over the vocabulary, the blank left out; a batch gives each clip
    the bag it has alone (padding adds nothing); a text's bag counts its word pieces and not its padding."""
    from modeling_mint import MintForConditionalGeneration

    model = MintForConditionalGeneration.from_pretrained(token_prompt_dir).eval()
    width, vocabulary = model.config.audio_config.d_model, model.get_input_embeddings().weight.shape[0]
    frames, mask = torch.randn(2, 12, width), torch.ones(2, 12, dtype=torch.long)
    mask[1, 4:] = 0
    bags = model.get_audio_token_bags(audio_frames=frames, audio_frame_mask=mask)
    assert bags.shape == (2, vocabulary)
    alone = model.get_audio_token_bags(audio_frames=frames[1:, :4], audio_frame_mask=mask[1:, :4])
    torch.testing.assert_close(bags[1:], alone, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        projected = model.model.language_projection(
            model.model.bridge_query_output(audio_frames=frames[:1], audio_frame_mask=mask[:1]))
        posteriors = model.model.token_posteriors(projected)
    assert posteriors.shape[0] == 3 * model.config.num_query_tokens  # 12 frames in windows of 5
    torch.testing.assert_close(bags[0], posteriors[:, :-1].sum(0), atol=1e-5, rtol=1e-4)
    ids = torch.tensor([[7, 9, 7, 0], [3, 0, 0, 0]])
    texts = model.get_text_token_bags(ids, torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]]))
    assert texts[0, 7] == 2 and texts[0, 9] == 1 and texts[0].sum() == 3 and texts[1, 3] == 1 and texts[1].sum() == 1
    plain = MintForConditionalGeneration.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="CTC head"):
        plain.get_audio_token_bags(audio_frames=frames, audio_frame_mask=mask)


def test_held_out_slices_rank_texts_and_labels_by_the_ctc_heads_word_pieces(token_prompt_dir, small_corpus, tmp_path,
                                                                            monkeypatch):
    """A model with the token prompt's CTC head is also scored by retrieval and zero-shot over what it spells,
    beside any stage-1 embeddings; a model without the head has no such rows."""
    from mint.training import compare
    from mint.training.evaluate import ranking_metrics

    from mint.training.evaluate import evaluate

    monkeypatch.setattr(compare, "HELD_OUT_SLICES", {"prompts": (["transcription"], ["asterisk", "generated"])})
    data = compare.main(["--held-out", "--model", f"token prompt={token_prompt_dir}", "--data", str(small_corpus),
                         "--max-per-task", "3", "--out", str(tmp_path / "held_out")])
    assert 0 <= data["prompts/audio -> text R@1 (CTC word pieces)"]["token prompt"] <= 1
    text = (tmp_path / "held_out" / "held_out.md").read_text()
    assert "| prompts (2 clips) | audio -> text R@1 (CTC word pieces) |" in text and "(embeddings)" not in text
    sounds = evaluate(str(token_prompt_dir), str(small_corpus), "train", str(tmp_path / "sounds"),
                      tasks=["classification"], max_per_task=6)["token_bags"]
    assert sounds["zero_shot/classification/all"]["clips"] == 6 and 0 <= sounds["zero_shot/classification/all"][
        "accuracy"] <= 1 and "retrieval" not in sounds
    # the ranking itself: a clip whose bag is a text's word pieces retrieves that text and names that label
    rows = [{"task": "transcription", "language": "en", "text": t, "source": "s"} for t in ("a b", "c d", "e f")]
    rows += [{"task": "classification", "language": "", "text": t, "source": "s"} for t in ("bark", "bell")]
    bag = {"a b": [1, 1, 0, 0], "c d": [0, 0, 1, 1], "e f": [1, 0, 1, 0], "bark": [1, 1, 0, 0], "bell": [0, 0, 1, 1]}
    unit = lambda texts: torch.nn.functional.normalize(torch.tensor([bag[t] for t in texts], dtype=torch.float), dim=-1)
    metrics = ranking_metrics(rows, lambda subset: unit([r["text"] for r in subset])[:, None], unit)
    assert metrics["retrieval"]["audio_to_text/R@1"] == 1.0 and metrics["zero_shot/classification/s"]["accuracy"] == 1


def test_mix_is_validated():
    from modeling_mint import MintConfig

    with pytest.raises(ValueError, match="token_prompt_mix must be in"):
        MintConfig(token_prompt_mix=1.5)


def test_spec_augment_masks_frame_and_channel_spans_in_training_only(token_prompt_dir):
    from modeling_mint import MintForConditionalGeneration

    model = MintForConditionalGeneration.from_pretrained(
        token_prompt_dir, apply_spec_augment=True, mask_time_prob=0.3, mask_time_length=3, mask_time_min_masks=1,
        mask_feature_prob=0.25, mask_feature_length=2, mask_feature_min_masks=1,
    ).model
    width = model.config.bridge_config.encoder_hidden_size
    frames = torch.randn(2, 20, width) + 5  # no frame or channel is zero before masking
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, 8:] = 0
    cached = frames.clone()
    model.train()
    masked, _ = model.audio_frames(audio_frames=frames, audio_frame_mask=mask)
    assert torch.equal(frames, cached)  # the cache's tensor is left alone
    zero = masked == 0
    times, channels = zero.all(-1), zero.all(1)
    assert times[0].any() and times[1, :8].any() and not times[1, 8:].any()  # time spans only within the audio
    assert channels.any(-1).all()  # each clip loses whole channels
    assert torch.equal(zero, times[..., None] | channels[:, None])  # nothing but whole frames and channels
    assert torch.equal(masked[~zero], frames[~zero])
    model.eval()
    assert torch.equal(model.audio_frames(audio_frames=frames, audio_frame_mask=mask)[0], frames)
    model.config.apply_spec_augment = False
    model.train()
    assert torch.equal(model.audio_frames(audio_frames=frames, audio_frame_mask=mask)[0], frames)


def test_window_positions_start_at_zero_and_tell_the_queries_where_they_are(token_prompt_dir):
    from modeling_mint import MintForConditionalGeneration
    from mint.hub.weights import trained_state
    from mint.training.pretrain_generative import soft_prompt_ctc_loss

    plain = MintForConditionalGeneration.from_pretrained(token_prompt_dir).eval()
    located = MintForConditionalGeneration.from_pretrained(token_prompt_dir, window_position_embeddings=True).eval()
    positions = located.model.query_tokens.window_positions
    assert positions.shape == (5, located.config.bridge_config.encoder_hidden_size) and not positions.any()
    assert plain.model.query_tokens.window_positions is None
    frames = torch.randn(2, 12, positions.shape[1])
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    before = plain.model.bridge_query_output(audio_frames=frames, audio_frame_mask=mask)
    torch.testing.assert_close(located.model.bridge_query_output(audio_frames=frames, audio_frame_mask=mask), before)
    assert "model.query_tokens.window_positions" in trained_state(located)  # shipped with the Bridge-Net

    located.train()
    projected = located.model.language_projection(located.model.bridge_query_output(audio_frames=frames,
                                                                                    audio_frame_mask=mask))
    counts = [12, 8]  # 3 and 2 windows of 4 queries
    targets = [torch.tensor([5, 6, 7]), torch.tensor([8])]
    soft_prompt_ctc_loss(projected, counts, located.lm_head.weight, located.model.ctc_blank, targets).backward()
    assert positions.grad is not None and positions.grad.abs().sum() > 0
    with torch.no_grad():
        positions.normal_()
    located.eval()
    after = located.model.bridge_query_output(audio_frames=frames, audio_frame_mask=mask)
    assert not torch.allclose(after, before)


def test_clip_context_starts_at_zero_and_gives_each_clips_windows_its_own_clip(token_prompt_dir):
    from modeling_mint import MintForConditionalGeneration
    from mint.hub.weights import trained_state

    plain = MintForConditionalGeneration.from_pretrained(token_prompt_dir).eval()
    context = MintForConditionalGeneration.from_pretrained(token_prompt_dir, clip_context=True).eval()
    projection = context.model.query_tokens.context_projection
    width = context.config.bridge_config.encoder_hidden_size
    assert projection.shape == (3 * width, context.config.bridge_config.hidden_size) and not projection.any()
    assert plain.model.query_tokens.context_projection is None
    frames = torch.randn(2, 12, width)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    before = plain.model.bridge_query_output(audio_frames=frames, audio_frame_mask=mask)
    torch.testing.assert_close(context.model.bridge_query_output(audio_frames=frames, audio_frame_mask=mask), before)
    assert {"model.query_tokens.context_projection", "model.query_tokens.context_norm.weight"} <= set(
        trained_state(context))  # shipped with the Bridge-Net

    with torch.no_grad():
        projection.normal_()
    batch = context.model.bridge_query_output(audio_frames=frames, audio_frame_mask=mask)
    assert not torch.allclose(batch, before)
    # each clip's windows read its own clip's context: alone, the second clip (2 windows) reads what it read beside
    # the first (3 windows), and its padding frames do not count
    alone = context.model.bridge_query_output(audio_frames=frames[1:, :7], audio_frame_mask=mask[1:, :7])
    torch.testing.assert_close(batch[12:], alone)
    # the context is the whole clip's: changing the first window's frames changes the queries of the last window
    changed = frames.clone()
    changed[0, :5] += 1.0
    after = context.model.bridge_query_output(audio_frames=changed, audio_frame_mask=mask)
    assert not torch.allclose(after[8:12], batch[8:12])
    assert torch.allclose(plain.model.bridge_query_output(audio_frames=changed, audio_frame_mask=mask)[8:12],
                          before[8:12])


def test_rolled_audio_keeps_each_prompts_token_count():
    from mint.training.audio_dependence import rolled_audio

    frames = torch.arange(3 * 6, dtype=torch.float).reshape(3, 6, 1)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]])
    rolled = rolled_audio({"audio_frames": frames, "audio_frame_mask": mask})
    assert torch.equal(rolled["audio_frame_mask"], mask)
    assert rolled["audio_frames"][0, :, 0].tolist() == [12, 13, 14, 15, 12, 13]  # clip 2's 4 frames, looped
    assert rolled["audio_frames"][1, :2, 0].tolist() == [0, 1]  # clip 0's, cut
    assert rolled["audio_frames"][2, :4, 0].tolist() == [6, 7, 6, 7]


def test_schedule_anneals_linearly_and_holds():
    from mint.training.generative import TokenPromptMixSchedule

    schedule = TokenPromptMixSchedule(1.0, 0.5, 10)
    assert [schedule.value(s) for s in (0, 5, 10, 20)] == [1.0, 0.75, 0.5, 0.5]


def recipe(tmp_path, name, **fields):
    import yaml

    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(fields))
    return str(path)


@pytest.mark.training
def test_ctc_then_lora_stage2_then_instruct_carry_head_mix_and_adapter(token_prompt_dir, small_corpus, tmp_path):
    """CTC alignment without the LLM, then stage 2 with LoRA and the mix annealed 1 -> 0.5 (gap logged at each
    evaluation), then instruction tuning that continues the same adapter: the CTC head and the adapter travel."""
    cache = tmp_path / "features"
    base = dict(model_dir=str(token_prompt_dir), data_dir=str(small_corpus), feature_cache_dir=str(cache),
                per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True,
                seed=0, max_eval_clips=8, max_steps=2, tasks=["transcription", "captioning"],
                window_position_embeddings=True)  # every stage reads the window positions the CTC stage trains
    ctc = tmp_path / "ctc"
    main(["train", "stage2", "--recipe", recipe(tmp_path, "ctc", **base, output_dir=str(ctc), lm_weight=0.0,
                                                ctc_weight=1.0, save_strategy="no", apply_spec_augment=True,
                                                mask_time_prob=0.2, mask_time_length=2, mask_feature_prob=0.1,
                                                window_positions_learning_rate=0.05)])
    ctc_weights = load_file(str(ctc / "bridge.safetensors"))
    assert ctc_weights["model.ctc_blank"].abs().sum() > 0  # trained, and saved with the bridge
    positions = ctc_weights["model.query_tokens.window_positions"]  # two Adam steps at their own rate
    assert 0.05 < positions.abs().max() <= 0.1 + 1e-6
    from mint.training.pretrain_generative import ctc_parameters

    shipped_head = ctc_parameters(str(ctc / "bridge.safetensors"))  # a weights file, as a variant ships it
    torch.testing.assert_close(shipped_head["ctc_blank"], ctc_weights["model.ctc_blank"])

    stage2 = tmp_path / "stage2"
    main(["train", "instruct", "--recipe", recipe(
        tmp_path, "stage2", **base, output_dir=str(stage2), stage2_weights=str(ctc / "bridge.safetensors"),
        instruction_in_prompt=False, instruction_in_bridge=False, lora_rank=4, token_prompt_mix_start=1.0,
        token_prompt_mix_end=0.5, token_prompt_mix_steps=2, eval_strategy="steps", eval_steps=1,
        save_strategy="no", bf16=False)])
    report = json.loads((stage2 / "instruct_report.json").read_text())
    mixes = [e["token_prompt_mix"] for e in report["log"] if "token_prompt_mix" in e and "loss" in e]
    assert mixes[0] == 0.75 and mixes[-1] == 0.5
    gaps = [e["eval_audio_gap"] for e in report["log"] if "eval_audio_gap" in e]
    assert len(gaps) >= 2 and all(abs(g) < 50 for g in gaps)
    weights = load_file(str(stage2 / "bridge.safetensors"))
    torch.testing.assert_close(weights["model.ctc_blank"], ctc_weights["model.ctc_blank"])  # frozen, still shipped
    adapter = load_file(str(stage2 / "llm_adapter" / "adapter_model.safetensors"))
    assert adapter and all(".lora_" in k for k in adapter)

    instruct = tmp_path / "instruct"
    main(["train", "instruct", "--recipe", recipe(
        tmp_path, "instruct", **base, output_dir=str(instruct), stage2_weights=str(stage2 / "bridge.safetensors"),
        llm_adapter=str(stage2 / "llm_adapter"), token_prompt_mix_start=0.5, save_strategy="no", bf16=False)])
    continued = load_file(str(instruct / "llm_adapter" / "adapter_model.safetensors"))
    assert continued.keys() == adapter.keys()
    assert any(not torch.equal(continued[k], adapter[k]) for k in adapter)  # the same adapter, trained further
    with pytest.raises(SystemExit, match="no adapter_model.safetensors"):  # the command's one-line error
        main(["train", "instruct", "--recipe", recipe(
            tmp_path, "bad", **base, output_dir=str(tmp_path / "bad"), llm_adapter=str(tmp_path))])


@pytest.mark.training
def test_ctc_stage_reads_shorter_windows_and_the_probe_spells_them(token_prompt_dir, small_corpus, tmp_path):
    """A recipe's `bridge_window_frames` retunes a windowed bridge: the run's model and processor count the same
    audio tokens, and the CTC probe reads the saved run with them; a blank penalty only adds tokens."""
    from mint.hub.assemble import ship_weights
    from modeling_mint import MintConfig, MintProcessor
    from mint.training import ctc_probe

    out, cache = tmp_path / "ctc", tmp_path / "features"
    main(["train", "stage2", "--recipe", recipe(
        tmp_path, "ctc", model_dir=str(token_prompt_dir), data_dir=str(small_corpus), feature_cache_dir=str(cache),
        per_device_train_batch_size=4, learning_rate=1e-3, report_to="none", use_cpu=True, seed=0, max_eval_clips=8,
        max_steps=2, tasks=["transcription"], output_dir=str(out), lm_weight=0.0, ctc_weight=1.0,
        save_strategy="no", bridge_window_frames=2)])
    processor = MintProcessor.from_pretrained(out)
    assert MintConfig.from_pretrained(out).bridge_window_frames == 2 == processor.bridge_window_frames
    assert processor.tokens_for_frames(5) == 3 * 4  # 3 windows of 4 queries where the fixture had 1
    assert ship_weights(out / "bridge.safetensors", None, tmp_path / "shipped.safetensors")["bridge_window_frames"] == 2
    probe = ["--model", str(out), "--checkpoint", str(out / "bridge.safetensors"), "--data", str(small_corpus),
             "--split", "train", "--sources", "--feature-cache", str(cache)]
    plain, penalised = ctc_probe.main(probe), ctc_probe.main([*probe, "--blank-penalty", "100"])
    assert plain["blank_penalty"] == 0 and penalised["blank_penalty"] == 100
    assert sum(len(e["ctc"]) for e in penalised["examples"]) >= sum(len(e["ctc"]) for e in plain["examples"]) > 0


@pytest.mark.training
def test_stage1_reads_the_recipes_windows(token_prompt_dir, small_corpus, tmp_path):
    """A stage-1 recipe's `bridge_window_frames` retunes the windowed bridge as the generative stages do: the
    retrieval folder it exports and its processor count the same windows."""
    from modeling_mint import MintConfig, MintProcessor

    out = tmp_path / "heads"
    main(["train", "stage1", "--recipe", recipe(
        tmp_path, "heads", model_dir=str(token_prompt_dir), data_dir=str(small_corpus), output_dir=str(out),
        feature_cache_dir=str(tmp_path / "features"), per_device_train_batch_size=4, report_to="none", use_cpu=True,
        bf16=False, seed=0, max_steps=1, save_strategy="no", tasks=["transcription", "captioning"],
        bridge_window_frames=2)])
    processor = MintProcessor.from_pretrained(out / "retrieval")
    assert MintConfig.from_pretrained(out / "retrieval").bridge_window_frames == 2 == processor.bridge_window_frames


def test_stage_benchmark_times_every_stage_against_stage_2(tiny_model_dir, token_prompt_dir, tmp_path):
    from mint.bench import stages

    stages.main(["--model", str(tiny_model_dir), "--align-model", str(token_prompt_dir), "--quick", "--threads", "1",
                 "--out", str(tmp_path)])
    report = json.loads((tmp_path / "stages.json").read_text())
    assert set(report["results"]) == {"stage1", "align (CTC, no LLM)", "stage2", "instruct"}
    assert all(r["gflop"] > 0 and r["samples_per_s"] > 0 for r in report["results"].values())
    assert report["align_over_stage2"] == pytest.approx(
        report["results"]["align (CTC, no LLM)"]["samples_per_s"] / report["results"]["stage2"]["samples_per_s"])
    assert "Target 3x" in (tmp_path / "stages.md").read_text()


def test_stage1_targets_reach_the_shared_bridge_and_the_heads(token_prompt_dir, small_corpus, tmp_path):
    """Stage 1's targets on a generative batch: only the describing rows' answers become texts (same text, same
    group), and their loss trains the generation model's own Bridge-Net through the text pass and the heads."""
    from mint.training import generative
    from mint.training.generative import GenerativeRecipe
    from mint.training.multi_target import Stage1TextCollator, head_parameters, stage1_loss, stage1_model
    from transformers import TrainingArguments

    recipe = GenerativeRecipe(model_dir=str(token_prompt_dir), data_dir=str(small_corpus),
                              tasks=["transcription", "captioning"],
                              feature_cache_dir=str(tmp_path / "features"), instruction_in_prompt=True,
                              instruction_in_bridge=True, max_eval_clips=4)
    model, processor, train, _, collator = generative.setup(recipe, TrainingArguments(str(tmp_path), use_cpu=True))
    rows = [train[i] for i in range(len(train))]
    describing = rows[:3]
    question = {**rows[3], "task": "question_answering", "text": "Yes."}  # an answer that describes nothing
    batch = Stage1TextCollator(collator, processor.bridge_tokenizer)([describing[0], question, *describing[1:],
                                                                      {**describing[0]}])
    assert batch["stage1_rows"].tolist() == [True, False, True, True, True]
    groups = batch["stage1_group_ids"].tolist()
    assert groups[0] == groups[3] and len(set(groups)) == len({r["text"] for r in describing})

    retrieval = stage1_model(model)
    assert retrieval.model is model.model  # shared, not copied
    out = stage1_loss(retrieval, batch)
    assert torch.isfinite(out.loss) and out.loss_atc > 0 and out.loss_agtg > 0
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head_parameters(retrieval))
    text_only = model.model.bridge.embeddings.position_embeddings.weight  # position embeddings: texts only
    assert text_only.grad is not None and text_only.grad.abs().sum() > 0
    assert model.model.language_model.get_input_embeddings().weight.grad is None  # the LLM is not in it
    # fewer than two different texts: no stage-1 inputs, the batch trains on the LLM's loss alone
    assert "stage1_rows" not in Stage1TextCollator(collator, processor.bridge_tokenizer)([question, describing[0]])


@pytest.mark.training
def test_instruct_keeps_the_ctc_heads_spelling_on_describing_rows(token_prompt_dir, tiny_model_dir, small_corpus,
                                                                   tmp_path):
    """`ctc_weight` in instruction tuning: the token prompt's CTC loss on the describing rows joins the LLM's loss
    (logged as `ctc_loss`, the sum exact), under LoRA; a model without the head is refused before training."""
    base = dict(data_dir=str(small_corpus), feature_cache_dir=str(tmp_path / "f"), per_device_train_batch_size=4,
                learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True, seed=0, max_eval_clips=8,
                max_steps=2, tasks=["transcription", "captioning", "question_answering"], save_strategy="no",
                bf16=False, lora_rank=4, ctc_weight=0.5)
    run = tmp_path / "ctc"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "ctc", **base, model_dir=str(token_prompt_dir),
                                                  output_dir=str(run))])
    logged = [e for e in json.loads((run / "instruct_report.json").read_text())["log"] if "ctc_loss" in e]
    assert logged and all(0 < e["ctc_loss"] < 100 for e in logged)
    assert all(abs(e["loss"] - e["lm_loss"] - 0.5 * e["ctc_loss"]) < 1e-3 * e["loss"] for e in logged)
    assert not any("stage1_loss" in e for e in logged)  # stage 1's targets stay off at weight 0
    assert not (run / "heads.safetensors").exists()  # no heads are built or written without stage 1's targets
    # a later round goes on with the run's adapter, here with the clip's context beside the windows
    later = tmp_path / "later"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "later", **{**base, "max_steps": 1},
                                                  model_dir=str(token_prompt_dir), output_dir=str(later),
                                                  stage1_checkpoint=str(run), llm_adapter=str(run / "llm_adapter"),
                                                  clip_context=True)])
    shipped = load_file(str(later / "bridge.safetensors"))
    assert shipped["model.query_tokens.context_projection"].any()  # trained from zero by the step
    with pytest.raises(ValueError, match="the model has none"):
        main(["train", "instruct", "--recipe", recipe(tmp_path, "plain", **base, model_dir=str(tiny_model_dir),
                                                      output_dir=str(tmp_path / "plain"))])
    with pytest.raises(SystemExit, match="ctc_weight"):
        main(["train", "instruct", "--recipe", recipe(tmp_path, "negative", **{**base, "ctc_weight": -1.0},
                                                      model_dir=str(token_prompt_dir), output_dir=str(run))])


def test_clip_label_collator_marks_only_the_labelled_rows():
    from mint.training.sft import ClipLabelCollator

    collator = ClipLabelCollator(lambda rows: {"n": len(rows)}, ["bark", "rain"])
    batch = collator([{"task": "classification", "text": "rain"}, {"task": "captioning", "text": "rain"},
                      {"task": "classification", "text": "thunder"}, {"task": "classification", "text": "bark"}])
    assert batch["n"] == 4 and batch["clip_label_ids"].tolist() == [1, -100, -100, 0]
    collator = ClipLabelCollator(lambda rows: {}, ["bark", "rain", "speech"], task_labels={"transcription": "speech"})
    batch = collator([{"task": "transcription", "text": "hello"}, {"task": "classification", "text": "bark"},
                      {"task": "captioning", "text": "speech"}])
    assert batch["clip_label_ids"].tolist() == [2, 0, -100]  # every transcription row is speech, whatever it says
    assert batch["clip_task_labelled"].tolist() == [True, False, False]


def test_task_labels_follow_the_classification_labels_and_are_validated(tmp_path):
    """`task_labels`: its labels come after the sorted classification labels (an earlier round's classifier grows
    by rows), a label both lists hold counts once, and the recipe names what it cannot use."""
    from datasets import Dataset

    from mint.training.sft import InstructRecipe, train_labels

    train = Dataset.from_dict({"task": ["classification", "transcription", "classification", "spoken_word"],
                               "text": ["rain", "hello", "bark", "cat"]})
    assert train_labels(train) == ["bark", "rain"]
    assert train_labels(train, task_labels={"transcription": "speech", "spoken_word": "speech"}) == [
        "bark", "rain", "speech"]
    assert train_labels(train, task_labels={"transcription": "rain"}) == ["bark", "rain"]
    with pytest.raises(ValueError, match=r"without train rows: \['language_id'\]"):
        train_labels(train, task_labels={"language_id": "speech"})
    tasks = ["classification", "transcription"]
    recipe = InstructRecipe(model_dir="m", tasks=tasks, label_weight=0.3, task_labels='{"transcription": "speech"}')
    assert recipe.task_labels == {"transcription": "speech"}
    for bad in ({"classification": "speech"}, {"captioning": "speech"}, {"transcription": " "}):
        with pytest.raises(ValueError, match="task_labels maps"):
            InstructRecipe(model_dir="m", tasks=tasks, label_weight=0.3, task_labels=bad)
    with pytest.raises(ValueError, match="needs label_weight or label_prompt_tokens"):
        InstructRecipe(model_dir="m", tasks=tasks, task_labels={"transcription": "speech"})


@pytest.mark.training
def test_instruct_label_loss_trains_a_classifier_on_the_clips_query_outputs(token_prompt_dir, small_corpus, tmp_path):
    """`label_weight`: a classifier over the train split's labels reads the labelled rows' query outputs; its loss
    joins the LLM's (logged as `label_loss`, the sum exact) under LoRA; every checkpoint holds the classifier and a
    resumed run goes on with it; the bridge it trains is the one that ships."""
    base = dict(model_dir=str(token_prompt_dir), data_dir=str(small_corpus), feature_cache_dir=str(tmp_path / "f"),
                per_device_train_batch_size=8, learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True,
                seed=0, max_eval_clips=8, max_steps=2, tasks=["classification", "captioning"], bf16=False,
                lora_rank=4, label_weight=0.5, save_strategy="steps", save_steps=2, clip_context=True,
                task_repeats={"classification": 4})
    run = tmp_path / "labels"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "labels", **base, output_dir=str(run))])
    logged = [e for e in json.loads((run / "instruct_report.json").read_text())["log"] if "label_loss" in e]
    assert logged and all(0 < e["label_loss"] < 50 and 0 <= e["label_accuracy"] <= 1 for e in logged)
    assert all(abs(e["loss"] - e["lm_loss"] - 0.5 * e["label_loss"]) < 1e-3 * e["loss"] for e in logged)
    head = load_file(str(run / "label_head.safetensors"))
    width = json.loads((token_prompt_dir / "config.json").read_text())["bridge_config"]["hidden_size"]
    assert head["weight"].shape[0] >= 2 and head["weight"].shape[1] == width  # labels x the bridge's width
    saved = load_file(str(run / "checkpoint-2" / "label_head.safetensors"))
    assert all(torch.equal(saved[k], head[k]) for k in head)
    assert load_file(str(run / "bridge.safetensors"))["model.query_tokens.context_projection"].any()
    resumed = tmp_path / "resumed"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "resumed", **base, output_dir=str(resumed)),
          "--resume_from_checkpoint", str(run / "checkpoint-2")])  # at its last step: nothing left to train
    assert all(torch.equal(load_file(str(resumed / "label_head.safetensors"))[k], head[k]) for k in head)
    save_file({"weight": torch.zeros(1, width), "bias": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    later = tmp_path / "later"  # a later round starts from the classifier; at rate 0 it keeps it exactly
    main(["train", "instruct", "--recipe", recipe(tmp_path, "later", **{**base, "max_steps": 1, "save_strategy": "no"},
                                                  output_dir=str(later), label_head_learning_rate=0.0,
                                                  label_head_weights=str(run / "label_head.safetensors"))])
    assert all(torch.equal(load_file(str(later / "label_head.safetensors"))[k], head[k]) for k in head)
    with pytest.raises(ValueError, match="labels of width"):  # a classifier of another run's labels
        main(["train", "instruct", "--recipe", recipe(tmp_path, "other", **base, output_dir=str(tmp_path / "other"),
                                                      label_head_weights=str(tmp_path / "other.safetensors"))])
    with pytest.raises(SystemExit, match="label_weight"):
        main(["train", "instruct", "--recipe", recipe(tmp_path, "negative", **{**base, "label_weight": -1.0},
                                                      output_dir=str(run))])


@pytest.mark.training
def test_instruct_with_stage1_targets_ships_heads_fitted_to_the_bridge(token_prompt_dir, small_corpus, tmp_path):
    """`stage1_weight`: the heads train beside LoRA and the Bridge-Net, their losses are logged, the evaluation loss
    stays the LLM's alone, and the heads file they leave starts the next run and loads into the retrieval model."""
    from modeling_mint import MintForAudioTextRetrieval
    from mint.hub.weights import RETRIEVAL_HEADS, load_by_prefix

    base = dict(model_dir=str(token_prompt_dir), data_dir=str(small_corpus), feature_cache_dir=str(tmp_path / "f"),
                per_device_train_batch_size=4, learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True,
                seed=0, max_eval_clips=8, max_steps=2, tasks=["transcription", "captioning"], save_strategy="no",
                bf16=False, stage1_weight=1.0, lora_rank=4, eval_strategy="steps", eval_steps=2)
    first, second, resumed = tmp_path / "first", tmp_path / "second", tmp_path / "resumed"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "first", **{**base, "save_strategy": "steps"},
                                                  save_steps=2, output_dir=str(first))])
    report = json.loads((first / "instruct_report.json").read_text())
    logged = [e for e in report["log"] if "loss" in e]
    assert logged and all(0 < e["stage1_loss"] < 50 and "loss_atm" in e for e in logged)
    assert all(0 < e["lm_loss"] < e["loss"] for e in logged)  # the LLM's part, below the sum
    assert not any("stage1_loss" in e for e in report["log"] if "eval_loss" in e)
    heads = load_file(str(first / "heads.safetensors"))
    assert heads and all(k.startswith(RETRIEVAL_HEADS) for k in heads)
    assert not any(k.startswith(RETRIEVAL_HEADS) for k in load_file(str(first / "bridge.safetensors")))
    saved = load_file(str(first / "checkpoint-2" / "heads.safetensors"))  # every checkpoint holds the heads
    assert all(torch.equal(saved[k], heads[k]) for k in heads)
    main(["train", "instruct", "--recipe", recipe(tmp_path, "resumed", **base, output_dir=str(resumed)),
          "--resume_from_checkpoint", str(first / "checkpoint-2")])  # at its last step: nothing left to train
    assert all(torch.equal(load_file(str(resumed / "heads.safetensors"))[k], heads[k]) for k in heads)

    main(["train", "instruct", "--recipe", recipe(  # half batches, accumulated: stage 1 keeps its share
        tmp_path, "second", **{**base, "lora_rank": 0, "per_device_train_batch_size": 2}, output_dir=str(second),
        gradient_accumulation_steps=2,
        stage2_weights=str(first / "bridge.safetensors"), llm_adapter=str(first / "llm_adapter"),
        heads_weights=str(first / "heads.safetensors"))])
    logged = [e for e in json.loads((second / "instruct_report.json").read_text())["log"] if "stage1_loss" in e]
    assert logged and all(abs(e["loss"] - e["lm_loss"] - e["stage1_loss"]) < 1e-3 * e["loss"] for e in logged)
    continued = load_file(str(second / "heads.safetensors"))
    assert continued.keys() == heads.keys()
    assert any(not torch.equal(continued[k], heads[k]) for k in heads)  # the same heads, trained further
    retrieval = MintForAudioTextRetrieval.from_pretrained(token_prompt_dir)
    load_by_prefix(retrieval, second / "heads.safetensors", RETRIEVAL_HEADS, "retrieval heads")


def label_prompt_model(token_prompt_dir, labels=("bark", "rain", "thunder"), tokens=2):
    """The tiny token-prompt model and its processor with a label prompt over `labels`."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    model = MintForConditionalGeneration.from_pretrained(
        token_prompt_dir, label_prompt_tokens=tokens, id2label=dict(enumerate(labels)))
    processor = MintProcessor.from_pretrained(token_prompt_dir, label_prompt_tokens=tokens)
    model.model.label_token_ids.copy_(processor.label_token_ids(list(labels)))
    return model, processor


def test_label_prompt_follows_each_clips_audio_tokens_with_its_labels_embeddings(token_prompt_dir):
    """A classifier sure of one label hands the LLM that label's own word-piece embeddings, after each clip's own
    audio tokens (clips of different lengths in one batch), and the processor counts those placeholders."""
    model, processor = label_prompt_model(token_prompt_dir)
    mint = model.model
    ids = processor.label_token_ids(["bark", "rain", "thunder"])
    assert ids.shape == (3, 2) and ids.dtype == torch.long
    assert ids[0, 0] != ids[1, 0]  # each label its own first word piece
    with torch.no_grad():
        mint.label_head.weight.zero_()
        mint.label_head.bias.copy_(torch.tensor([0.0, 30.0, 0.0]))  # sure of "rain" whatever the audio
    width = model.config.audio_config.d_model
    frames, mask = torch.randn(2, 12, width), torch.ones(2, 12, dtype=torch.long)
    mask[1, 6:] = 0  # 12 and 6 frames: 3 and 2 windows of 5
    tokens = mint.get_audio_features(audio_frames=frames, audio_frame_mask=mask).pooler_output
    counts = [processor.tokens_for_frames(n) for n in (12, 6)]
    assert counts == [processor.query_tokens_for_frames(n) + 2 for n in (12, 6)] == [14, 10]
    assert tokens.shape[0] == sum(counts)
    rain = mint.get_input_embeddings()(ids[1])
    first, second = tokens.split(counts)
    for clip in (first, second):
        torch.testing.assert_close(clip[-2:], rain, atol=1e-4, rtol=0)
    queries = mint.mix_token_prompt(mint.language_projection(mint.bridge_query_output(
        audio_frames=frames, audio_frame_mask=mask)))
    torch.testing.assert_close(torch.cat([first[:-2], second[:-2]]), queries)  # the audio tokens as before
    # the whole model reads the prompt the processor builds
    batch = processor(text=["<audio> What is this sound?"], audio=[torch.randn(16000).numpy()], return_tensors="pt")
    assert int((batch["input_ids"] == processor.audio_token_id).sum()) == processor.audio_tokens_per_clip(
        batch["feature_attention_mask"].numpy())[0]
    assert model(**batch).logits.shape[1] == batch["input_ids"].shape[1]


def test_a_label_prompt_grows_from_an_earlier_one_over_its_first_labels(token_prompt_dir):
    """A later round's classifier over more labels takes an earlier one's rows for the labels they share (the word
    pieces tell them) and keeps its own start for the rest; labels in another order or others are refused."""
    from mint.hub.weights import trained_state
    from mint.training.sft import load_label_prompt

    earlier, _ = label_prompt_model(token_prompt_dir, ("bark", "rain", "thunder"))
    grown, _ = label_prompt_model(token_prompt_dir, ("bark", "rain", "thunder", "speech"))
    state = {k: v for k, v in trained_state(earlier).items() if k.startswith("model.label_")}
    start = grown.model.label_head.weight[3].clone()
    load_label_prompt(grown.model, state, "earlier")
    torch.testing.assert_close(grown.model.label_head.weight[:3], earlier.model.label_head.weight)
    torch.testing.assert_close(grown.model.label_head.bias[:3], earlier.model.label_head.bias)
    assert torch.equal(grown.model.label_head.weight[3], start)
    for labels in (("rain", "bark", "thunder", "speech"), ("bark", "rain")):
        other, _ = label_prompt_model(token_prompt_dir, labels)
        with pytest.raises(ValueError, match="is not over this run's labels"):
            load_label_prompt(other.model, state, "earlier")


def test_label_prompt_is_validated():
    from modeling_mint import MintConfig

    labels = {0: "bark", 1: "rain"}
    assert MintConfig(bridge_window_frames=10, label_prompt_tokens=2, id2label=labels).num_labels == 2
    with pytest.raises(ValueError, match="needs id2label"):
        MintConfig(bridge_window_frames=10, label_prompt_tokens=2)
    with pytest.raises(ValueError, match="two labels or more"):
        MintConfig(bridge_window_frames=10, label_prompt_tokens=2, id2label={0: "bark"})
    with pytest.raises(ValueError, match="needs a windowed Bridge-Net"):
        MintConfig(label_prompt_tokens=2, id2label=labels)
    with pytest.raises(ValueError, match="must not be negative"):
        MintConfig(bridge_window_frames=10, label_prompt_tokens=-1, id2label=labels)


@pytest.mark.training
def test_instruct_label_prompt_trains_the_models_classifier_and_ships_it(token_prompt_dir, small_corpus, tmp_path):
    """`label_prompt_tokens`: the run gives the model a classifier over its train split's labels and their word
    pieces; the label loss and the LLM's train it at its own rate under LoRA; the run's bridge file, its config
    (`id2label`) and its processor carry it; a resumed run and a later round from its bridge go on with it;
    `ship_weights` keeps the word pieces as integers and records the labels."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor

    from mint.hub.assemble import run_labels, ship_weights
    from mint.hub.weights import trained_labels

    base = dict(model_dir=str(token_prompt_dir), data_dir=str(small_corpus), feature_cache_dir=str(tmp_path / "f"),
                per_device_train_batch_size=8, learning_rate=1e-3, logging_steps=1, report_to="none", use_cpu=True,
                seed=0, max_eval_clips=8, max_steps=2, tasks=["classification", "captioning"], bf16=False,
                lora_rank=4, label_weight=0.5, label_prompt_tokens=3, label_head_learning_rate=0.05,
                save_strategy="steps", save_steps=2, clip_context=True, task_repeats={"classification": 4})
    run = tmp_path / "prompted"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "prompted", **base, output_dir=str(run))])
    logged = [e for e in json.loads((run / "instruct_report.json").read_text())["log"] if "label_loss" in e]
    assert logged and all(abs(e["loss"] - e["lm_loss"] - 0.5 * e["label_loss"]) < 1e-3 * e["loss"] for e in logged)
    assert not (run / "label_head.safetensors").exists()  # the classifier is the model's
    weights = load_file(str(run / "bridge.safetensors"))
    labels = json.loads((run / "config.json").read_text())["id2label"]
    ids = weights["model.label_token_ids"]
    assert ids.dtype == torch.long and ids.shape == (len(labels), 3) and len(labels) >= 2
    assert weights["model.label_head.weight"].shape[0] == len(labels)
    model = MintForConditionalGeneration.from_pretrained(run)
    assert model.config.label_prompt_tokens == 3 and MintProcessor.from_pretrained(run).label_prompt_tokens == 3
    fresh = MintForConditionalGeneration.from_pretrained(token_prompt_dir)  # the classifier trained from random
    assert torch.equal(model.model.label_token_ids, ids)
    assert (weights["model.label_head.weight"].abs().max() > 0) and model.model.label_head.weight.requires_grad
    torch.testing.assert_close(model.model.label_head.weight, weights["model.label_head.weight"])
    assert not hasattr(fresh.model, "label_head")

    resumed = tmp_path / "resumed"
    main(["train", "instruct", "--recipe", recipe(tmp_path, "resumed", **base, output_dir=str(resumed)),
          "--resume_from_checkpoint", str(run / "checkpoint-2")])
    again = load_file(str(resumed / "bridge.safetensors"))
    assert torch.equal(again["model.label_head.weight"], weights["model.label_head.weight"])
    later = tmp_path / "later"  # a later round from the run's bridge keeps its classifier (at rate 0 exactly)
    main(["train", "instruct", "--recipe", recipe(
        tmp_path, "later", **{**base, "max_steps": 1, "save_strategy": "no", "label_head_learning_rate": 0.0},
        output_dir=str(later), stage1_checkpoint=str(run / "bridge.safetensors"))])
    assert torch.equal(load_file(str(later / "bridge.safetensors"))["model.label_head.weight"],
                       weights["model.label_head.weight"])
    names = [labels[str(i)] for i in range(len(labels))]
    grown = tmp_path / "grown"  # a round that labels every transcription row "speech" grows the classifier by a row
    main(["train", "instruct", "--recipe", recipe(
        tmp_path, "grown", **{**base, "max_steps": 1, "save_strategy": "no", "label_head_learning_rate": 0.0,
                              "tasks": ["classification", "captioning", "transcription"]},
        output_dir=str(grown), stage1_checkpoint=str(run / "bridge.safetensors"),
        task_labels={"transcription": "speech"})])
    grown_labels = json.loads((grown / "config.json").read_text())["id2label"]
    assert [grown_labels[str(i)] for i in range(len(grown_labels))] == names + ["speech"]
    logged = [e for e in json.loads((grown / "instruct_report.json").read_text())["log"] if "label_loss" in e]
    assert logged and all(0 <= e.get("task_label_accuracy", 0) <= 1 for e in logged)
    assert any("task_label_accuracy" in e for e in logged)  # the speech rows' top-1 logged apart
    grown_weights = load_file(str(grown / "bridge.safetensors"))
    assert torch.equal(grown_weights["model.label_head.weight"][:-1], weights["model.label_head.weight"])
    assert torch.equal(grown_weights["model.label_token_ids"][:-1], ids)

    assert run_labels(run / "bridge.safetensors") == names
    ship_weights(run / "bridge.safetensors", None, tmp_path / "shipped.safetensors")
    shipped = load_file(str(tmp_path / "shipped.safetensors"))
    assert torch.equal(shipped["model.label_token_ids"], ids)  # word pieces stay exact (no fp16)
    assert shipped["model.label_head.weight"].dtype == torch.float16
    assert trained_labels(tmp_path / "shipped.safetensors") == names


def test_label_probe_scores_a_label_prompts_own_classifier(token_prompt_dir, small_corpus, tmp_path):
    """`label_probe` on a model with a label prompt also reports its classifier's top-1: a classifier that always
    names one label is right on exactly the clips of that label."""
    from mint.training.data import corpus_rows
    from mint.training.label_probe import main

    sources = ["ktuberling", "tuxpaint", "freedesktop"]
    rows = corpus_rows(str(small_corpus), "train", ["classification"], 6, 0, ["en"], sources)
    labels = sorted({r["text"] for r in rows} | {"never heard"})
    model, processor = label_prompt_model(token_prompt_dir, labels, tokens=2)
    with torch.no_grad():
        model.model.label_head.weight.zero_()
        model.model.label_head.bias.zero_()
        model.model.label_head.bias[labels.index(rows[0]["text"])] = 5.0
    model.save_pretrained(tmp_path / "labelled")
    processor.save_pretrained(tmp_path / "labelled")
    result = main(["--model", str(tmp_path / "labelled"), "--data", str(small_corpus), "--split", "train",
                   "--sources", *sources, "--max-clips", "6", "--feature-cache", str(tmp_path / "features")])
    assert result["classifier_accuracy"] == sum(r["text"] == rows[0]["text"] for r in rows) / len(rows)


def test_fit_label_head_refits_a_runs_classifier_to_its_bridge(token_prompt_dir, small_corpus, tmp_path):
    """`fit_label_head` fits the label prompt's classifier on the run's bridge outputs of every train clip: it names
    the train clips at least as well as the classifier it replaces, the rest of the run's bridge file is kept, the
    run's config goes beside it, and the shipped model reads the raw features as the fit scored them."""
    from mint.hub.weights import save_trainable
    from mint.training.data import corpus_rows
    from mint.training.fit_label_head import main

    rows = corpus_rows(str(small_corpus), "train", ["classification"], None, 0, ["en"])
    labels = sorted({r["text"] for r in rows})
    model, processor = label_prompt_model(token_prompt_dir, labels, tokens=2)
    run = tmp_path / "run"
    model.save_pretrained(run)
    processor.save_pretrained(run)
    save_trainable(model, run / "bridge.safetensors")
    out = tmp_path / "fitted"
    report = main(["--run", str(run), "--data", str(small_corpus), "--out", str(out),
                   "--feature-cache", str(tmp_path / "features")])
    assert report["train_clips"] == len(rows) and report["validation_clips"] > 0
    assert report["fitted"]["train"] >= max(report["trained_in_the_loop"]["train"], 0.8)
    before, after = load_file(str(run / "bridge.safetensors")), load_file(str(out / "bridge.safetensors"))
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("model.label_head."))
    assert not torch.equal(before["model.label_head.weight"], after["model.label_head.weight"])
    assert json.loads((out / "config.json").read_text())["label_prompt_tokens"] == 2
    assert json.loads((out / "fit.json").read_text())["fitted"] == report["fitted"]
    with pytest.raises(ValueError, match="no label prompt"):
        main(["--run", str(token_prompt_dir), "--out", str(tmp_path / "none")])
    speech, processor = label_prompt_model(token_prompt_dir, [*labels, "speech"], tokens=2)  # a task's label
    speech.save_pretrained(tmp_path / "speech")
    processor.save_pretrained(tmp_path / "speech")
    with pytest.raises(ValueError, match=r"labels without train rows: \['speech'\]"):
        main(["--run", str(tmp_path / "speech"), "--data", str(small_corpus), "--out", str(tmp_path / "none"),
              "--feature-cache", str(tmp_path / "features")])
    grown = tmp_path / "grown"  # a next round's task_labels: the classifier grows by "speech", fitted on speech rows
    report = main(["--run", str(run), "--data", str(small_corpus), "--out", str(grown), "--feature-cache",
                   str(tmp_path / "features"), "--task-labels", '{"transcription": "speech"}', "--max-task-clips", "8"])
    assert report["labels"] == len(labels) + 1 and report["task_clips"] == 8
    assert report["fitted"]["task_train"] >= 0.75 and report["fitted"]["task_validation"] is not None
    config = json.loads((grown / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(len(labels) + 1)] == [*labels, "speech"]
    weights = load_file(str(grown / "bridge.safetensors"))
    assert weights["model.label_head.weight"].shape[0] == len(labels) + 1
    assert torch.equal(weights["model.label_token_ids"][:-1], before["model.label_token_ids"])
    assert torch.equal(weights["model.label_token_ids"][-1], processor.label_token_ids(["speech"])[0])


def _greedy(scorer, steps: int, clips: int, vocabulary: int, seed: int = 0):
    """Greedy search driven by the scorer alone over random LLM scores: the answers and each chosen token's score."""
    generator = torch.Generator().manual_seed(seed)
    ids, chosen = torch.zeros(clips, 3, dtype=torch.long), []
    for _ in range(steps):
        scores = scorer(ids, torch.randn(clips, vocabulary, generator=generator))
        token = scores.argmax(-1)
        chosen.append(scores.gather(1, token[:, None])[:, 0])
        ids = torch.cat([ids, token[:, None]], 1)
    return ids[:, 3:], torch.stack(chosen, 1)


def test_ctc_prefix_scores_sum_to_the_ctc_log_likelihood_of_the_answer():
    """Step by step, the CTC terms of joint decoding telescope: an answer's chosen scores (ctc_weight 1) add up to
    its CTC log-likelihood (torch's ctc_loss), repeated tokens, a padded shorter clip and the end token included."""
    from modeling_mint.generation_mint import MintCTCPrefixScorer

    vocabulary, eos = 6, 0
    generator = torch.Generator().manual_seed(0)
    log_posteriors = torch.randn(2, 7, vocabulary + 1, generator=generator).log_softmax(-1)
    log_posteriors[1, 5:] = float("-inf")  # the second clip has 5 audio tokens: padded with certain blanks
    log_posteriors[1, 5:, -1] = 0.0
    answers = [[3, 3, 1], [2, 5, 2, 2]]
    scorer = MintCTCPrefixScorer(log_posteriors, ctc_weight=1.0, eos_token_id=eos, candidates=vocabulary)
    ids, chosen = torch.zeros(2, 3, dtype=torch.long), []
    for step in range(5):
        out = scorer(ids, torch.zeros(2, vocabulary))
        token = torch.tensor([a[step] if step < len(a) else eos for a in answers])
        chosen.append(out.gather(1, token[:, None])[:, 0])
        ids = torch.cat([ids, token[:, None]], 1)
    for clip, (answer, length) in enumerate(zip(answers, (7, 5))):
        expected = -torch.nn.functional.ctc_loss(
            log_posteriors[clip, :length, None], torch.tensor([answer]), torch.tensor([length]),
            torch.tensor([len(answer)]), blank=vocabulary, reduction="sum")
        total = torch.stack(chosen, 1)[clip, : len(answer) + 1].sum()
        torch.testing.assert_close(total, expected, atol=1e-4, rtol=1e-5)


def test_a_sure_ctc_head_overrules_the_llm_and_the_weight_mixes_the_two():
    """With a CTC head sure of `4 4 2` (a blank between the 4s), greedy search at ctc_weight 1 writes it and ends,
    whatever the LLM prefers; at a weight in between each score is the weighted sum of the LLM's log-probability
    and the CTC step. Bad settings are refused by name."""
    from modeling_mint.generation_mint import MintCTCPrefixScorer

    vocabulary, blank = 6, 6
    path = [4, blank, 4, 2, blank]
    log_posteriors = torch.full((1, len(path), vocabulary + 1), -30.0)
    for t, token in enumerate(path):
        log_posteriors[0, t, token] = 0.0
    log_posteriors = log_posteriors.log_softmax(-1)
    answers, _ = _greedy(MintCTCPrefixScorer(log_posteriors, 1.0, eos_token_id=[0], candidates=vocabulary),
                         steps=5, clips=1, vocabulary=vocabulary)
    assert answers[0, :4].tolist() == [4, 4, 2, 0]
    scorer = MintCTCPrefixScorer(log_posteriors, 0.3, eos_token_id=0, candidates=2)
    llm = torch.tensor([[0.0, 1.0, 3.0, 0.5, 2.0, -1.0]])
    out = scorer(torch.zeros(1, 2, dtype=torch.long), llm)
    assert torch.isinf(out).sum() == vocabulary - 2  # only the LLM's two best are scored
    ctc = MintCTCPrefixScorer(log_posteriors, 1.0, eos_token_id=0, candidates=2)(torch.zeros(1, 2, dtype=torch.long), llm)
    torch.testing.assert_close(out[0, [2, 4]], 0.7 * llm.log_softmax(-1)[0, [2, 4]] + 0.3 * ctc[0, [2, 4]])
    for bad, match in ((dict(ctc_weight=0.0), "ctc_weight"), (dict(ctc_weight=1.5), "ctc_weight"),
                       (dict(candidates=0), "candidates"), (dict(eos_token_id=None), "eos_token_id")):
        with pytest.raises(ValueError, match=match):
            MintCTCPrefixScorer(log_posteriors, **{"ctc_weight": 0.5, "eos_token_id": 0, **bad})
    two_clips = MintCTCPrefixScorer(log_posteriors.repeat(2, 1, 1), 0.3, eos_token_id=0)
    with pytest.raises(ValueError, match="another batch"):
        two_clips(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, vocabulary))


def test_generate_scores_answers_jointly_with_the_ctc_head(token_prompt_dir):
    """`generate(ctc_weight=...)` on the tiny model: at weight 1 over the whole vocabulary an answer's scores add up
    to its CTC log-likelihood under the head's posteriors for its own clip (clips of 4 and 8 audio tokens in one
    batch), the generation config's weight is the default, beam search runs, and a model without the head refuses."""
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from tests.conftest import tone

    model = MintForConditionalGeneration.from_pretrained(token_prompt_dir).eval()
    processor = MintProcessor.from_pretrained(token_prompt_dir)
    inputs = processor(text=["<audio> hi", "<audio> hi"], audio=[tone(0.1), tone(0.2, freq=880)],
                       sampling_rate=16000)
    vocabulary = model.get_input_embeddings().weight.shape[0]
    with torch.no_grad():
        log_posteriors = model.model.audio_token_log_posteriors(inputs["input_features"],
                                                                inputs["feature_attention_mask"])
    lengths = [4, 8]
    assert log_posteriors.shape[:2] == (2, 8) and log_posteriors[0, 4:, -1].eq(0).all()
    eos = model.generation_config.eos_token_id
    out = model.generate(**inputs, ctc_weight=1.0, ctc_candidates=vocabulary, max_new_tokens=12, do_sample=False,
                         pad_token_id=eos, output_scores=True, return_dict_in_generate=True)
    prompt = inputs["input_ids"].shape[1]
    for clip in range(2):
        answer = out.sequences[clip, prompt:].tolist()
        assert eos in answer, "every audio token spent, the head can only end the answer"
        answer = answer[: answer.index(eos)]
        chosen = sum(out.scores[i][clip, token] for i, token in enumerate(answer + [eos]))
        expected = -torch.nn.functional.ctc_loss(
            log_posteriors[clip, : lengths[clip], None], torch.tensor([answer]), torch.tensor([lengths[clip]]),
            torch.tensor([len(answer)]), blank=vocabulary, reduction="sum", zero_infinity=False)
        torch.testing.assert_close(chosen, expected, atol=1e-3, rtol=1e-4)
    model.generation_config.ctc_weight = 1.0
    default = model.generate(**inputs, ctc_candidates=vocabulary, max_new_tokens=12, do_sample=False,
                             pad_token_id=eos)
    assert default.tolist() == out.sequences.tolist()
    beams = model.generate(**inputs, ctc_weight=0.5, num_beams=3, max_new_tokens=4, pad_token_id=eos)
    assert beams.shape[0] == 2
    plain = model.generate(**inputs, ctc_weight=0.0, max_new_tokens=4, do_sample=False, pad_token_id=eos)
    model.generation_config.ctc_weight = 0.0
    assert plain.tolist() == model.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=eos).tolist()
    with pytest.raises(ValueError, match="input_features or audio_frames"):
        model.generate(input_ids=inputs["input_ids"], ctc_weight=0.5, max_new_tokens=2)


def test_evaluation_decodes_with_the_ctc_head_when_asked(token_prompt_dir, small_corpus, tmp_path, monkeypatch):
    """`evaluate(generate_kwargs=...)` hands joint CTC decoding to every answer and records how it decoded;
    `compare --decoding` gives it to one task of one model."""
    from modeling_mint import MintForConditionalGeneration
    from mint.training.evaluate import evaluate

    metrics = evaluate(str(token_prompt_dir), str(small_corpus), "train", str(tmp_path / "joint"),
                       tasks=["transcription"], max_per_task=2, max_new_tokens=3,
                       generate_kwargs={"ctc_weight": 0.5, "num_beams": 2})
    assert metrics["decoding"] == {"transcription": {"ctc_weight": 0.5, "num_beams": 2}}
    assert metrics["transcription"]["all"]["clips"] == 2 and metrics["transcription"]["all"]["WER"] >= 0
    assert "| decoding | transcription | ctc_weight | 0.500 |" in (tmp_path / "joint" / "metrics.md").read_text()
    # per task: the held-out comparison decodes transcription jointly and the sounds greedily
    from mint.training import compare

    calls = []
    generate = MintForConditionalGeneration.generate
    monkeypatch.setattr(MintForConditionalGeneration, "generate",
                        lambda self, *a, **k: calls.append(k.get("ctc_weight")) or generate(self, *a, **k))
    monkeypatch.setattr(compare, "HELD_OUT_SLICES", {"prompts": (["transcription"], ["asterisk", "generated"]),
                                                     "sounds": (["classification"], ["tuxpaint", "freedesktop"])})
    compare.main(["--held-out", "--model", f"joint={token_prompt_dir}", "--data", str(small_corpus),
                  "--max-per-task", "2", "--out", str(tmp_path / "held_out"),
                  "--decoding", 'joint={"transcription": {"ctc_weight": 0.5}}'])
    assert calls == [0.5, None]
    calls.clear()
    only = compare.main(["--held-out", "--model", f"joint={token_prompt_dir}", "--data", str(small_corpus),
                         "--max-per-task", "2", "--out", str(tmp_path / "speech"), "--slices", "prompts",
                         "--decoding", 'joint={"transcription": {"ctc_weight": 0.5}}'])
    assert calls == [0.5] and {k.split("/")[0] for k in only} == {"prompts"}
    with pytest.raises(ValueError, match="no held-out slices"):
        compare.held_out({"joint": str(token_prompt_dir)}, str(small_corpus), tmp_path / "x", 2, slices=["nope"])
    saved = json.loads((tmp_path / "held_out" / "prompts" / "joint" / "metrics.json").read_text())
    assert saved["decoding"] == {"transcription": {"ctc_weight": 0.5}}
    with pytest.raises(SystemExit):
        compare.main(["--held-out", "--model", f"joint={token_prompt_dir}", "--out", str(tmp_path / "x"),
                      "--decoding", 'other={"transcription": {}}'])


def test_mint_run_and_the_pipeline_decode_with_the_ctc_head(token_prompt_dir, tiny_model_dir, wav_file, capsys):
    """`mint run --ctc-weight --num-beams` and the pipeline's `ctc_weight` reach `generate`; the model's generation
    config gives the default; bad values are refused by name, and a model without the head says why per clip."""
    from transformers import pipeline

    assert main(["run", str(wav_file), "--model", str(token_prompt_dir), "--ctc-weight", "0.5", "--num-beams", "2",
                 "--max-new-tokens", "3"]) == 0
    assert str(wav_file) in capsys.readouterr().out
    for flag, value, match in (("--ctc-weight", "1.5", "--ctc-weight must be in"),
                               ("--num-beams", "0", "--num-beams must be at least 1")):
        with pytest.raises(SystemExit, match=match):
            main(["run", str(wav_file), "--model", str(token_prompt_dir), flag, value])
    assert main(["run", str(wav_file), "--model", str(tiny_model_dir), "--ctc-weight", "0.5"]) == 1
    assert "CTC head" in capsys.readouterr().err
    pipe = pipeline("audio-text-to-text", model=str(token_prompt_dir), trust_remote_code=True)
    joint = pipe(str(wav_file), prompt="hi", max_new_tokens=4, ctc_weight=1.0, ctc_candidates=8)["generated_text"]
    plain = pipe(str(wav_file), prompt="hi", max_new_tokens=4)["generated_text"]
    pipe.model.generation_config.ctc_weight = 1.0
    assert pipe(str(wav_file), prompt="hi", max_new_tokens=4, ctc_candidates=8)["generated_text"] == joint != plain


def test_a_folder_ships_its_transcription_decoding_and_the_demo_uses_it(token_prompt_dir, tiny_model_dir, small_corpus,
                                                                        wav_file, tmp_path, monkeypatch):
    """A variant's `decoding` becomes `{task}_generation_config.json` beside the model (the model's own generation
    config stays greedy); `make demo`, `mint eval` and `mint run --decoding transcription` decode speech that way and
    the sounds greedily. A decoding the model cannot run is refused before anything is written."""
    from transformers import GenerationConfig

    from hub_configs.assemble import save_folder
    from modeling_mint import MintForConditionalGeneration, MintProcessor
    from mint.training import demo
    from mint.training.evaluate import evaluate, task_decoding

    model = MintForConditionalGeneration.from_pretrained(token_prompt_dir)
    processor = MintProcessor.from_pretrained(token_prompt_dir)
    folder = save_folder(model, processor, tmp_path / "joint",
                         decoding={"transcription": {"ctc_weight": 0.5, "num_beams": 2}})
    transcribe = GenerationConfig.from_pretrained(folder, "transcription_generation_config.json")
    assert (transcribe.ctc_weight, transcribe.num_beams) == (0.5, 2)
    own = GenerationConfig.from_pretrained(folder)
    assert own.num_beams in (None, 1) and getattr(own, "ctc_weight", None) is None
    clips = demo.main(["--model", str(folder), "--json", "--max-new-tokens", "3"])
    assert clips[0]["decoding"] == {"ctc_weight": 0.5, "num_beams": 2} and "answer" in clips[0]
    assert all("decoding" not in c for c in clips[1:])
    assert task_decoding(str(tiny_model_dir), "transcription") == {}
    # evaluation decodes each task as the folder ships it, unless told otherwise
    calls = []
    generate = MintForConditionalGeneration.generate
    monkeypatch.setattr(MintForConditionalGeneration, "generate", lambda self, *a, **k: calls.append(
        (k.get("ctc_weight"), k.get("num_beams"))) or generate(self, *a, **k))
    metrics = evaluate(str(folder), str(small_corpus), "train", str(tmp_path / "eval"),
                       tasks=["transcription", "classification"], max_per_task=2, max_new_tokens=2)
    assert calls == [(0.5, 2), (None, None)]
    assert metrics["decoding"] == {"transcription": {"ctc_weight": 0.5, "num_beams": 2}}
    calls.clear()
    evaluate(str(folder), str(small_corpus), "train", str(tmp_path / "greedy"), tasks=["transcription"],
             max_per_task=2, max_new_tokens=2, task_generate_kwargs={"transcription": {"ctc_weight": 0.0}})
    assert calls == [(0.0, 2)]
    assert main(["eval", "--model", str(folder), "--data", str(small_corpus), "--split", "train", "--tasks",
                 "transcription", "--max-per-task", "1", "--max-new-tokens", "2", "--ctc-weight", "0",
                 "--out", str(tmp_path / "cli")]) == 0  # mint eval's flags go on top of the shipped decoding
    saved = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert saved["decoding"] == {"transcription": {"ctc_weight": 0.0, "num_beams": 2}}
    # mint run --decoding transcription: the same, or one line saying the model ships none
    calls.clear()
    assert main(["run", str(wav_file), "--model", str(folder), "--decoding", "transcription",
                 "--max-new-tokens", "2"]) == 0
    assert calls == [(0.5, 2)]
    with pytest.raises(SystemExit, match="ships no transcription decoding"):
        main(["run", str(wav_file), "--model", str(tiny_model_dir), "--decoding", "transcription"])
    plain = MintForConditionalGeneration.from_pretrained(tiny_model_dir)
    for bad, match in (({"ctc_weight": 0.5}, "no token prompt CTC head"), ({}, "sets nothing")):
        with pytest.raises(ValueError, match=match):
            save_folder(plain, processor, tmp_path / "refused", decoding={"transcription": bad})
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        save_folder(model, processor, tmp_path / "refused", decoding={"transcription": {"ctc_weight": 2.0}})
    assert not (tmp_path / "refused").exists()


def test_ctc_context_layers_start_as_the_identity_and_leave_the_soft_prompt_alone(token_prompt_dir, tmp_path):
    """New context layers change nothing the CTC head reads; trained, they change what it reads (each clip its own:
    padding does not leak in) but never the soft prompt the LLM reads. They ship with the Bridge-Net, and assembly
    counts them from the weights."""
    from modeling_mint import MintConfig, MintForConditionalGeneration
    from mint.hub.weights import ctc_context_layers, save_trainable, trained_state

    plain = MintForConditionalGeneration.from_pretrained(token_prompt_dir).eval()
    context = MintForConditionalGeneration.from_pretrained(token_prompt_dir, ctc_context_layers=2).eval()
    layers = context.model.ctc_context.layers
    assert len(layers) == 2 and not layers[0].out_weight.any() and not hasattr(plain.model, "ctc_context")
    width = context.config.bridge_config.encoder_hidden_size
    frames, mask = torch.randn(2, 12, width), torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    audio = {"audio_frames": frames, "audio_frame_mask": mask}
    before = plain.model.audio_token_log_posteriors(**audio)
    torch.testing.assert_close(context.model.audio_token_log_posteriors(**audio), before)

    with torch.no_grad():
        for layer in layers:
            layer.out_weight.normal_(std=0.5)
    after = context.model.audio_token_log_posteriors(**audio)
    assert not torch.allclose(after[:, :4], before[:, :4])
    alone = context.model.audio_token_log_posteriors(audio_frames=frames[1:, :7], audio_frame_mask=mask[1:, :7])
    torch.testing.assert_close(after[1:, : alone.shape[1]], alone)
    assert (after[1, alone.shape[1] :, -1] == 0).all()  # padding: certain blanks, as before
    torch.testing.assert_close(context.model.get_audio_features(**audio).pooler_output,
                               plain.model.get_audio_features(**audio).pooler_output)

    assert any(k.startswith("model.ctc_context.layers.1.") for k in trained_state(context))
    path = save_trainable(context, tmp_path / "bridge.safetensors")
    assert ctc_context_layers(path) == 2 and ctc_context_layers(None) == 0
    context.save_pretrained(tmp_path / "saved")
    reloaded = MintForConditionalGeneration.from_pretrained(tmp_path / "saved").eval()
    torch.testing.assert_close(reloaded.model.audio_token_log_posteriors(**audio), after)
    with pytest.raises(ValueError, match="ctc_context_layers must not be negative"):
        MintConfig(**{**plain.config.to_dict(), "ctc_context_layers": -1})
    with pytest.raises(ValueError, match="ctc_context_layers feeds the token prompt's CTC head"):
        MintConfig(**{**plain.config.to_dict(), "token_prompt_mix": 0.0, "ctc_context_layers": 1})


def test_fit_ctc_context_trains_the_layers_alone_and_writes_a_shippable_bridge(token_prompt_dir, tiny_model_dir,
                                                                               small_corpus, tmp_path, capsys):
    """`fit_ctc_context` lowers the CTC loss it trains on and writes the model's Bridge-Net unchanged beside the new
    layers, which `mint ship` keeps."""
    from modeling_mint import MintForConditionalGeneration
    from mint.hub.assemble import ship_weights
    from mint.hub.weights import BRIDGE_NET, ctc_context_layers, save_trainable
    from mint.training.fit_ctc_context import main

    save_trainable(MintForConditionalGeneration.from_pretrained(token_prompt_dir), tmp_path / "before.safetensors")
    out = tmp_path / "fitted"
    report = main(["--model", str(token_prompt_dir), "--data", str(small_corpus), "--out", str(out), "--layers", "2",
                   "--minutes", "0.15", "--batch-size", "4", "--learning-rate", "3e-3",
                   "--feature-cache", str(tmp_path / "features")])
    first, last = report["history"][0], report["history"][-1]
    assert report["train_clips"] > 0 and report["validation_clips"] > 0 and report["steps"] > 0
    assert min(h["validation_ctc_loss"] for h in report["history"][1:]) < first["validation_ctc_loss"]
    assert 0 <= last["validation_greedy_wer"]
    weights = load_file(str(out / "bridge.safetensors"))
    before = load_file(str(tmp_path / "before.safetensors"))
    assert all(torch.equal(weights[k], before[k]) for k in weights if k.startswith(BRIDGE_NET))
    assert "model.bridge.encoder.layer.0.attention.attention.query.weight" in weights  # the Bridge-Net, less its
    assert "model.bridge.embeddings.word_embeddings.weight" not in weights  # frozen word embeddings, as stages do
    assert ctc_context_layers(out / "bridge.safetensors") == 2
    assert json.loads((out / "config.json").read_text())["ctc_context_layers"] == 2
    ship_weights(out / "bridge.safetensors", None, tmp_path / "shipped.safetensors")
    assert ctc_context_layers(tmp_path / "shipped.safetensors") == 2
    with pytest.raises(ValueError, match="no token prompt CTC head"):
        main(["--model", str(tiny_model_dir), "--out", str(tmp_path / "none")])
    for flag, value in (("--layers", "0"), ("--minutes", "-1"), ("--batch-size", "0")):
        with pytest.raises(SystemExit):
            main(["--model", str(token_prompt_dir), "--out", str(tmp_path / "none"), flag, value])
        assert f"{flag} must be positive" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
