"""`ModelTesterMixin`'s base class. transformers' source distribution does not ship its `torch.export` tests; MINT
runs none (its audio windows drop all-padding windows by a data-dependent mask, which `torch.export` cannot trace)."""


class ExportTesterMixin:
    pass
