"""Run by tests/test_retrieval.py under `torch.distributed.run` with 2 CPU processes (gloo): each rank computes the
stage-1 contrastive loss on its half of a fixed global batch; rank 0 writes the mean over ranks."""

import json
import sys

import torch
import torch.distributed as dist

from tests.test_losses_mint import stage1_batch
from modeling_mint import MintForAudioTextRetrieval


def main(out_path: str):
    dist.init_process_group("gloo")
    rank, world_size = dist.get_rank(), dist.get_world_size()
    config, inputs = stage1_batch(batch_size=4)
    torch.manual_seed(0)
    model = MintForAudioTextRetrieval(config).eval()
    half = inputs["input_ids"].shape[0] // world_size
    local = {k: v[rank * half : (rank + 1) * half] for k, v in inputs.items()}
    out = model(**local, return_loss=True)
    loss = out.loss_atc.detach().clone()
    dist.all_reduce(loss)
    out.loss_atc.backward()
    grad = model.model.query_tokens.weight.grad.clone()
    dist.all_reduce(grad)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"loss_atc": loss.item() / world_size, "grad": (grad / world_size).flatten().tolist(),
                       "columns": out.logits_per_audio.shape[1]}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
