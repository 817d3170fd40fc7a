"""`mint assemble`, `mint ship`, `mint push`: model folders from hub_configs/, and to the Hugging Face Hub."""

import json


def assemble(args) -> int:
    from mint.hub.assemble import assemble

    out = assemble(args.variant, args.out, seed=args.seed, retrieval=args.retrieval, untrained=args.untrained)
    print(f"assembled {args.variant} -> {out}")
    return 0


def ship(args) -> int:
    from mint.hub.assemble import ship_weights, variant_dir
    from mint.io import atomic_file

    src = variant_dir(args.variant)
    spec = json.loads((src / "variant.json").read_text())
    out = src / spec["trained_weights"]
    adapter_out = src / spec["language_model_adapter"] if spec.get("language_model_adapter") else None
    report = ship_weights(args.bridge, args.heads, out, args.adapter, adapter_out)
    learnt = report["bridge_window_frames"]
    if learnt is not None and learnt != spec.get("bridge_window_frames"):  # assembly reads the windows it learnt
        spec["bridge_window_frames"] = learnt
        with atomic_file(src / "variant.json") as tmp:
            tmp.write_text(json.dumps(spec, indent=2) + "\n")
    print(json.dumps({"out": str(out), **report}))
    return 0


def push(args) -> int:
    from mint.hub.push import push

    print(push(args.folder, args.repo_id, private=args.private, token=args.token, commit_message=args.commit_message))
    return 0


def add_parsers(sub) -> None:
    from mint.hub.assemble import variants

    p = sub.add_parser("assemble", help="build a variant from hub_configs/ into a loadable folder")
    p.add_argument("variant", choices=variants(), metavar="VARIANT",
                   help=f"a folder name under hub_configs/: {', '.join(variants())}")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed for randomly initialized parts")
    p.add_argument("--retrieval", action="store_true",
                   help="the retrieval / zero-shot model (stage 1) with the variant's trained heads")
    p.add_argument("--untrained", action="store_true", help="without the shipped trained weights (to train anew)")
    p.set_defaults(func=assemble)

    p = sub.add_parser("ship", help="put trained weights (fp16, at most 64 MB) into a variant of hub_configs/")
    p.add_argument("variant", choices=variants(), metavar="VARIANT",
                   help="a variant with a variant.json, e.g. mint-tiny")
    p.add_argument("--bridge", required=True, help="a generation run's bridge.safetensors")
    p.add_argument("--heads", default=None, help="a stage-1 run's heads.safetensors fitted to that bridge")
    p.add_argument("--adapter", default=None,
                   help="the LLM's LoRA adapter from the same instruction run (llm_adapter/)")
    p.set_defaults(func=ship)

    p = sub.add_parser("push", help="check an assembled folder and upload it to the Hugging Face Hub")
    p.add_argument("folder", help="a folder made by `mint assemble`")
    p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--token", default=None, help="a write token (default: HF_TOKEN or `hf auth login`)")
    p.add_argument("--commit-message", default=None)
    p.set_defaults(func=push)
