#!/usr/bin/env python3
"""FP8 twins of the golden bf16 checkpoints, made in numpy (scripts/quantize_fp8_checkpoint.py).

`moec compile --quantize=fp8` of a golden checkpoint must give the plan that `moec compile`
gives for its twin, weight for weight and byte for byte, and the same logits (GoldenTest,
QuantizedPlanEqualsTheNumpyQuantizedCheckpoint). The twins of the random variants are written
to quantized/<variant>/; the default model's twin is models/poems-v3-fp8, which
scripts/train_default_model.py makes with the same function. Each variant's manifest entry
records its twin under "quantized_twin".

Needs numpy only. Usage: python3 tests/golden/make_quantized.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from quantize_fp8_checkpoint import quantize_checkpoint  # noqa: E402


def main():
    manifest_path = os.path.join(HERE, "manifest.json")
    manifest = json.load(open(manifest_path, encoding="utf-8"))
    for v in manifest["variants"]:
        if v.get("fp8_tensors"):
            continue  # already FP8: quantizing changes nothing
        if v.get("checkpoint"):
            twin = v["checkpoint"] + "-fp8"  # the committed model's FP8 copy
            if not os.path.isdir(os.path.join(HERE, twin)):
                sys.exit(f"{v['name']}: no FP8 copy at {twin}")
        else:
            twin = os.path.join("quantized", v["name"])
            quantize_checkpoint(os.path.join(HERE, v["dir"]), os.path.join(HERE, twin),
                                other_files=())
            print(f"wrote {twin}")
        v["quantized_twin"] = twin
    tmp = manifest_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    os.replace(tmp, manifest_path)


if __name__ == "__main__":
    main()
