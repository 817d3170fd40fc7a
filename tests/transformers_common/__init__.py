"""transformers' own common model and configuration tests, run against MINT (`tests/test_transformers_common.py`).

`test_modeling_common.py` and `test_configuration_common.py` are transformers 5.23.0's, unchanged, from its source
distribution on PyPI (`pip download --no-deps --no-binary :all: transformers==5.23.0`, sha256
19d647a4d5d903a7c644ca5cde2d86efc3dde7d8c687ae7988806ff2205efa71), under the Apache License 2.0 (`LICENSE`).

That distribution ships only the top of transformers' `tests/` folder. The three modules those files import from
below it are MINT's own: `exporters/test_export.py` (no export tests), `utils/test_configuration_utils.py` (the
common config keyword arguments) and `generation/test_utils.py` (generation checks for MINT).
"""
