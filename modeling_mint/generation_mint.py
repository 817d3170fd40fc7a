"""Joint CTC/attention decoding for MINT's token prompt (Watanabe et al., 2017, "Hybrid CTC/Attention Architecture
for End-to-End Speech Recognition"): the CTC head that spells the soft prompt over the LLM vocabulary also scores
every answer the LLM writes, so a word the LLM guesses from its text prior but the audio does not hold loses to one
the audio spells.
"""

import torch
from transformers import LogitsProcessor


class MintCTCPrefixScorer(LogitsProcessor):
    """Adds the CTC prefix score of each candidate next token to the LLM's log-probabilities:

        score(c | g) = (1 - ctc_weight) * log p_LLM(c | g) + ctc_weight * (log p_CTC(g + c...) - log p_CTC(g...))

    where `log p_CTC(h...)` is the probability that the clip's audio tokens spell a sequence starting with `h` (for an
    end-of-answer token: spell exactly `g`). Summed over the answer the CTC terms telescope to `log p_CTC(answer)`, so
    greedy and beam search rank answers by the weighted sum of the two models. Only the LLM's `candidates` best next
    tokens are scored (the others get -inf), as CTC prefix scores cost a pass over the audio tokens each.

    Args:
        log_posteriors (`torch.Tensor` of shape `(B, T, V + 1)`): the CTC head's log posteriors per clip, the blank
            last; a shorter clip padded with certain blanks (log 1 on the blank, -inf elsewhere), as
            `MintModel.audio_token_log_posteriors` returns them.
        ctc_weight (`float`): in (0, 1].
        eos_token_id (`int` or list of `int`): the tokens that end an answer.
        candidates (`int`): how many of the LLM's best next tokens are scored.
    """

    def __init__(self, log_posteriors: torch.Tensor, ctc_weight: float, eos_token_id, candidates: int = 8):
        if not 0 < ctc_weight <= 1:
            raise ValueError(f"ctc_weight must be in (0, 1], got {ctc_weight}")
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        if log_posteriors.dim() != 3:
            raise ValueError(f"log_posteriors must be (batch, audio tokens, vocabulary + blank), got "
                             f"{tuple(log_posteriors.shape)}")
        eos = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
        if not eos:
            raise ValueError("joint CTC decoding needs the end-of-answer token (eos_token_id)")
        self.log_posteriors, self.ctc_weight, self.candidates = log_posteriors.float(), ctc_weight, candidates
        self.eos, self.eos_ids = torch.tensor(eos, device=log_posteriors.device), set(eos)
        self.prompt_length = None
        self.states = {}  # (clip, answer so far) -> (r (T, 2): ends in a label / in a blank, prefix score)

    def empty_state(self, clip: int):
        """Nothing spelt yet: every audio token so far a blank."""
        blank = self.log_posteriors[clip, :, -1]
        r = torch.stack([torch.full_like(blank, float("-inf")), blank.cumsum(0)], -1)
        return r, torch.tensor(0.0, device=blank.device)

    def extend(self, clips: torch.Tensor, r: torch.Tensor, last: torch.Tensor, tokens: torch.Tensor):
        """CTC prefix scores of each prefix `g` (state `r` `(N, T, 2)`, last token `last` `(N,)`, -1 when empty)
        extended by each of `tokens` `(N, K)`: the extended states `(N, K, T, 2)` and scores `(N, K)`."""
        x = self.log_posteriors[clips]  # (N, T, V + 1)
        x_c = x.gather(2, tokens[:, None, :].expand(-1, x.shape[1], -1))  # (N, T, K)
        blank = x[..., -1:]  # (N, T, 1)
        # a repeated token needs a blank between: it extends only the paths that ended in a blank
        phi = torch.where(tokens[:, None, :] == last[:, None, None], r[..., 1:], r.logsumexp(-1, keepdim=True))
        r_label, r_blank = torch.full_like(x_c, float("-inf")), torch.full_like(x_c, float("-inf"))
        r_label[:, 0] = torch.where((last < 0)[:, None], x_c[:, 0], r_label[:, 0])
        score = r_label[:, 0].clone()
        for t in range(1, x.shape[1]):
            r_label[:, t] = torch.logaddexp(r_label[:, t - 1], phi[:, t - 1]) + x_c[:, t]
            r_blank[:, t] = torch.logaddexp(r_blank[:, t - 1], r_label[:, t - 1]) + blank[:, t]
            score = torch.logaddexp(score, phi[:, t - 1] + x_c[:, t])
        return torch.stack([r_label, r_blank], -1).transpose(1, 2), score

    def state(self, clip: int, answer: tuple):
        """The state of one answer prefix, from the cache or built token by token from its longest cached start."""
        key = (clip, answer)
        if key not in self.states:
            if not answer:
                self.states[key] = self.empty_state(clip)
            else:
                r, _ = self.state(clip, answer[:-1])
                last = torch.tensor([answer[-2] if len(answer) > 1 else -1], device=r.device)
                token = torch.tensor([[answer[-1]]], device=r.device)
                states, scores = self.extend(torch.tensor([clip], device=r.device), r[None], last, token)
                self.states[key] = (states[0, 0], scores[0, 0])
        return self.states[key]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        rows, clips = input_ids.shape[0], self.log_posteriors.shape[0]
        if rows % clips:
            raise ValueError(f"{rows} hypotheses for {clips} clips: the CTC posteriors belong to another batch")
        answers = [tuple(row) for row in input_ids[:, self.prompt_length:].tolist()]
        clip_of = torch.arange(rows, device=scores.device) // (rows // clips)
        live = torch.tensor([self.eos_ids.isdisjoint(a) for a in answers], device=scores.device)
        log_probs = scores.float().log_softmax(-1)
        out = scores.new_full(scores.shape, float("-inf")).float()
        out[~live] = log_probs[~live]  # a finished answer's padding is the search's own business
        if not live.any():
            return out.to(scores.dtype)
        index = live.nonzero()[:, 0]
        states = [self.state(int(clip_of[i]), answers[i]) for i in index.tolist()]
        r = torch.stack([s[0] for s in states])
        prefix = torch.stack([s[1] for s in states])
        last = torch.tensor([answers[i][-1] if answers[i] else -1 for i in index.tolist()], device=scores.device)
        tokens = log_probs[index].topk(min(self.candidates, scores.shape[-1]), -1).indices  # (N, K)
        extended, ctc = self.extend(clip_of[index], r, last, tokens)
        ends = torch.isin(tokens, self.eos)
        ctc = torch.where(ends, r[:, -1].logsumexp(-1)[:, None], ctc)  # the audio spells exactly g
        llm = log_probs[index].gather(1, tokens)
        joint = (1 - self.ctc_weight) * llm + self.ctc_weight * (ctc - prefix[:, None])
        joint = torch.where(torch.isfinite(llm) & ~joint.isnan(), joint, float("-inf"))  # what either rules out
        out[index[:, None], tokens] = joint
        self.states = {}  # only the next step's prefixes are asked for (one token longer)
        for n, i in enumerate(index.tolist()):
            for k, token in enumerate(tokens[n].tolist()):
                self.states[(int(clip_of[i]), answers[i] + (token,))] = (extended[n, k], ctc[n, k])
        return out.to(scores.dtype)
