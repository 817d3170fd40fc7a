"""How `mint run` and `mint eval` decode: the model's generation config unless the command line says otherwise."""


def add_decoding_arguments(parser) -> None:
    parser.add_argument("--ctc-weight", type=float, default=None,
                        help="joint CTC decoding: weight of the token prompt's CTC head against the LLM, in [0, 1] "
                             "(default: the model's generation config; 0 turns it off)")
    parser.add_argument("--num-beams", type=int, default=None, help="beam search (default: the generation config)")


def decoding_kwargs(args) -> dict:
    """The `generate` keywords the command line sets, each checked; the rest stays the model's own."""
    kwargs = {}
    if args.ctc_weight is not None:
        if not 0 <= args.ctc_weight <= 1:
            raise SystemExit(f"--ctc-weight must be in [0, 1], got {args.ctc_weight}")
        kwargs["ctc_weight"] = args.ctc_weight
    if args.num_beams is not None:
        if args.num_beams < 1:
            raise SystemExit(f"--num-beams must be at least 1, got {args.num_beams}")
        kwargs["num_beams"] = args.num_beams
    return kwargs
