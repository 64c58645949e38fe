"""Build and publish `occ-obman-cot` from raw ObMan: the script form of `occ-hf build-dataset`.

```bash
python dataset_scripts/build_occ_obman_cot.py --obman_root /data/obman --config all --views_dir /data/views \
    --unclear_ids seed --out out/occ-obman-cot --push_to_hub org/occ-obman-cot --num_proc 8
```

Every option is a field of `occ_hf.data.build.BuildDatasetConfig`; `--help` lists them.
"""

from transformers import HfArgumentParser

from occ_hf.data.build import BuildDatasetConfig, build_dataset


def make_parser() -> HfArgumentParser:
    return HfArgumentParser(BuildDatasetConfig)


def main(config: BuildDatasetConfig) -> None:
    print(f"Wrote {build_dataset(config)}")


if __name__ == "__main__":
    (config,) = make_parser().parse_args_into_dataclasses()
    main(config)
