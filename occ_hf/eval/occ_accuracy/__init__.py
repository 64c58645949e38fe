"""The `evaluate` module of occ-hf's metric; load it with `evaluate.load(occ_hf.eval.EVALUATE_MODULE_PATH)`."""
