# Mixins and helpers, not test modules: `tests/test_transformers_common.py` runs them.
collect_ignore_glob = ["*.py", "*/*.py"]
