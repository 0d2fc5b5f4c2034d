"""`python -m export --checkpoint ID_OR_DIR --out DIR`: build a validated model dir for the runtime."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.build import DEFAULT_CHECKPOINT, build_model_dir
from export.onnx_export import DEFAULT_OPSET
from export.quantize import QuantizationError
from export.validate import ValidationError
from runtime.errors import InputError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="hub id or local checkpoint dir")
    parser.add_argument("--out", type=Path, default=Path("models/default"), help="model dir to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 weights (leading layers kept fp32 as needed), kept only if argmax agrees >= 99%%",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        manifest = build_model_dir(args.checkpoint, args.out, opset=args.opset, quantize=args.quantize)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValidationError, QuantizationError) as exc:
        print(f"error: validation failed, nothing written to {args.out}: {exc}", file=sys.stderr)
        return 1
    parity = manifest.parity
    print(
        f"exported {args.checkpoint} -> {args.out} ({manifest.model_type}, labels {manifest.labels}, "
        f"{manifest.activation}); parity vs PyTorch: max |diff| logits {parity['max_abs_diff_logits']:.1e}, "
        f"probabilities {parity['max_abs_diff_probabilities']:.1e} (tolerance {parity['atol']:.0e})"
    )
    if manifest.quantization:
        quantization = manifest.quantization
        agreement = quantization["agreement"]
        print(
            f"int8: {quantization['int8_matmuls']} MatMuls in int8, the first {quantization['fp32_leading_layers']} "
            f"layer(s) kept fp32; argmax agreement with PyTorch {agreement['argmax_agreement']:.2%} on "
            f"{agreement['texts']} texts, max |diff| probabilities {agreement['max_abs_diff_probabilities']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
