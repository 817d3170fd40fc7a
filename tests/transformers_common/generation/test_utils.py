"""Generation checks for MINT, in place of transformers' `GenerationTesterMixin` (not in its source distribution).

They cover what a transformers user of a multimodal generative model relies on: greedy decoding with and without
the cache, beam search and sampling, the dict outputs with scores, attentions and hidden states, continuing from
the `past_key_values` of an earlier `generate` (multi-turn cache reuse) and assisted decoding. The test class
provides `model_tester.prepare_config_and_inputs_for_common()` and `all_generative_model_classes`.
"""

import copy

import torch


class GenerationTesterMixin:
    max_new_tokens = 3

    def _generation_inputs(self):
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        inputs = {k: v for k, v in inputs.items() if k not in ("labels", "decoder_input_ids", "decoder_attention_mask")}
        return config, inputs

    def _model(self, model_class, config, attn="eager", dtype=torch.float32):
        config = copy.deepcopy(config)
        config._attn_implementation = attn
        return model_class(config).to(dtype).eval()

    @staticmethod
    def _in_double(inputs):
        """Float inputs in float64: where two paths compute the same logits in different chunks (a prefill against
        token-by-token decoding), random tiny weights can leave two logits close enough for float32 to swap them."""
        return {k: v.double() if v.is_floating_point() else v for k, v in inputs.items()}

    def _generate(self, model, inputs, **kwargs):
        """Greedy decoding that never emits a modality placeholder, as transformers' own generation tests do: random
        weights may pick the audio token, and a prompt re-read without the cache would then hold one clip too many."""
        placeholders = [[getattr(model.config, key)] for key in ("audio_token_id", "image_token_id")
                        if getattr(model.config, key, None) is not None]
        kwargs = {"max_new_tokens": self.max_new_tokens, "min_new_tokens": self.max_new_tokens, "do_sample": False,
                  "pad_token_id": 0, **({"bad_words_ids": placeholders} if placeholders else {}), **kwargs}
        with torch.no_grad():
            return model.generate(**inputs, **kwargs)

    def _new_tokens(self, model, inputs, sequences):
        """The generated part: decoder-only `generate` returns the prompt too."""
        return sequences if model.config.is_encoder_decoder else sequences[:, inputs["input_ids"].shape[1] :]

    def test_greedy_generate(self):
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model = self._model(model_class, config)
            out = self._new_tokens(model, inputs, self._generate(model, inputs))
            start = 1 if model.config.is_encoder_decoder else 0  # T5's decoder start token
            self.assertEqual(out.shape, (inputs["input_ids"].shape[0], start + self.max_new_tokens))

    def test_greedy_generate_without_cache_matches_with_cache(self):
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model, inputs = self._model(model_class, config, "eager", torch.float64), self._in_double(inputs)
            cached = self._generate(model, inputs, use_cache=True)
            uncached = self._generate(model, inputs, use_cache=False)
            self.assertEqual(cached.tolist(), uncached.tolist())

    def test_greedy_generate_dict_outputs(self):
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model = self._model(model_class, config)
            out = self._generate(model, inputs, return_dict_in_generate=True, output_scores=True, output_logits=True,
                                 output_attentions=True, output_hidden_states=True)
            layers = model.config.text_config.num_hidden_layers
            self.assertEqual(len(out.scores), self.max_new_tokens)
            self.assertEqual(len(out.logits), self.max_new_tokens)
            if model.config.is_encoder_decoder:
                self.assertEqual(len(out.encoder_attentions), layers)
                self.assertEqual(len(out.encoder_hidden_states), layers + 1)
                self.assertEqual(out.encoder_attentions[0].shape[-1], inputs["input_ids"].shape[1])
                step_outputs = (out.decoder_attentions, out.cross_attentions, out.decoder_hidden_states)
            else:
                step_outputs = (out.attentions, out.hidden_states)
            for per_step in step_outputs:
                self.assertEqual(len(per_step), self.max_new_tokens)
                self.assertIn(len(per_step[0]), (layers, layers + 1))  # hidden states add the embeddings

    def test_beam_search_generate(self):
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model = self._model(model_class, config)
            out = self._generate(model, inputs, num_beams=2, num_return_sequences=2, return_dict_in_generate=True,
                                 output_scores=True)
            self.assertEqual(out.sequences.shape[0], 2 * inputs["input_ids"].shape[0])
            self.assertEqual(out.sequences_scores.shape, (2 * inputs["input_ids"].shape[0],))

    def test_sample_generate_is_seeded(self):
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model = self._model(model_class, config)
            runs = []
            for _ in range(2):
                torch.manual_seed(0)
                runs.append(self._generate(model, inputs, do_sample=True, top_k=5).tolist())
            self.assertEqual(runs[0], runs[1])

    def test_generate_continue_from_past_key_values(self):
        """A second `generate` on the first one's output and cache continues exactly as one longer call would."""
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model, inputs = self._model(model_class, config, "sdpa", torch.float64), self._in_double(inputs)
            whole = self._generate(model, inputs, max_new_tokens=2 * self.max_new_tokens,
                                   min_new_tokens=2 * self.max_new_tokens)
            first = self._generate(model, inputs, return_dict_in_generate=True)
            second = dict(inputs, past_key_values=first.past_key_values)
            if model.config.is_encoder_decoder:
                second["decoder_input_ids"] = first.sequences
            else:
                second["input_ids"] = first.sequences
                new = first.sequences.shape[1] - inputs["input_ids"].shape[1]
                second["attention_mask"] = torch.nn.functional.pad(inputs["attention_mask"], (0, new), value=1)
            continued = self._generate(model, second)
            self.assertEqual(continued.tolist(), whole.tolist())

    def test_assisted_decoding_matches_greedy_search(self):
        """The same architecture as its own assistant (random weights of its own): the output is greedy search's."""
        for model_class in self.all_generative_model_classes:
            config, inputs = self._generation_inputs()
            model = self._model(model_class, config, "sdpa", torch.float64)
            assistant = self._model(model_class, config, "sdpa", torch.float64)
            one = {k: v[:1] for k, v in self._in_double(inputs).items()}  # assisted decoding takes one sequence at a time
            greedy = self._generate(model, one)
            assisted = self._generate(model, one, assistant_model=assistant)
            self.assertEqual(assisted.tolist(), greedy.tolist())
