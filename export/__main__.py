"""`python -m export --checkpoint ID_OR_DIR --out DIR`: build a validated model dir for the runtime."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from export import DEFAULT_OPSET
from export.destination import check_destination
from export.errors import QuantizationError, ValidationError
from export.source import DEFAULT_CHECKPOINT, locate_checkpoint
from runtime.cli import exit_code
from runtime.errors import ConfigurationError, ScorerError
from runtime.model.model_dir import Manifest

DEFAULT_OUT = Path("models/default")
CHATTY_LOGGERS = ("transformers", "huggingface_hub", "optimum", "torch", "onnxruntime")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        metavar="ID_OR_DIR",
        help=f"hub id or local checkpoint dir (default: {DEFAULT_CHECKPOINT}, from the hub, or only from the local "
        "Hugging Face cache when the hub is unreachable or HF_HUB_OFFLINE=1)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"model dir to write (default: {DEFAULT_OUT}); an existing --out is replaced only if it is a model dir "
        "this tool wrote",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing --out that is not a model dir this tool wrote (never the checkpoint dir, "
        "nor a dir inside it or around it)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="dynamic int8 weights (leading layers kept fp32 as needed), kept only if argmax agrees >= 99%%",
    )
    parser.add_argument(
        "--agreement-texts",
        type=Path,
        default=None,
        metavar="FILE",
        help="with --quantize: judge int8 agreement on these texts (one per line, or a Parquet `text` column) "
        "instead of generated sentences",
    )
    parser.add_argument("--verbose", action="store_true", help="show the libraries' logs and warnings on stderr")
    return parser.parse_args(argv)


@contextmanager
def library_logs(log: Path, verbose: bool) -> Iterator[None]:
    """Send transformers', huggingface_hub's and optimum's logs and warnings to `log` (and stderr if verbose).

    Their chatter (retries, tracer warnings, "some weights were not initialized") buries the one line that
    matters; the log keeps it for when something does go wrong.
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    handlers: list[logging.Handler] = [logging.FileHandler(log)]
    if verbose:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True)
    logging.captureWarnings(True)
    for name in CHATTY_LOGGERS:  # they are configured at import: their own stderr handlers go, ours apply
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.INFO if verbose else logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        yield


def report(args: argparse.Namespace, manifest: Manifest) -> None:
    parity = manifest.parity
    print(
        f"exported {args.checkpoint} -> {args.out} ({manifest.model_type}, labels {manifest.labels}, "
        f"{manifest.activation}); parity vs PyTorch: max |diff| logits {parity['max_abs_diff_logits']:.1e}, "
        f"probabilities {parity['max_abs_diff_probabilities']:.1e} (tolerance {parity['atol']:.0e})"
    )
    if not manifest.quantization:
        return
    quantization = manifest.quantization
    agreement = quantization["agreement"]
    kept = quantization["fp32_leading_layers"]
    layers = f"the first {kept} layer(s) kept fp32" if kept else "all layers int8"
    balance = ", ".join(
        f"{label} {share:.0%}" for label, share in zip(manifest.labels, agreement["reference_class_shares"])
    )
    print(
        f"int8: {quantization['int8_matmuls']} MatMuls in int8, {layers}; argmax agreement with PyTorch "
        f"{agreement['argmax_agreement']:.2%} on {agreement['texts']} texts ({quantization['agreement_texts']}; "
        f"PyTorch predicts {balance}), "
        f"max |diff| probabilities {agreement['max_abs_diff_probabilities']:.3f}"
    )
    from export.quantize import dominant_class_warning

    warning = dominant_class_warning(agreement, manifest.labels)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    handle, name = tempfile.mkstemp(prefix="export-", suffix=".log")
    os.close(handle)
    log = Path(name)
    keep_log = False
    try:
        if args.agreement_texts and not args.quantize:
            raise ConfigurationError("--agreement-texts judges int8 agreement; add --quantize int8 or drop it")
        source = locate_checkpoint(args.checkpoint)  # a bad name fails here, before seconds of imports
        check_destination(args.out, source, force=args.force)
        with library_logs(log, args.verbose):
            from export.build import build_model_dir

            manifest = build_model_dir(
                source, args.out, opset=args.opset, quantize=args.quantize, agreement_file=args.agreement_texts
            )
    except ScorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except (ValidationError, QuantizationError) as exc:
        print(f"error: validation failed, nothing written to {args.out}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: one line for the operator, the whole story in the log
        keep_log = True
        with open(log, "a", encoding="utf-8") as sink:
            traceback.print_exc(file=sink)
        reason = (str(exc).strip().splitlines() or [""])[0]
        print(
            f"error: export of {args.checkpoint} failed unexpectedly ({type(exc).__name__}: {reason}), nothing "
            f"written to {args.out}; full log: {log}",
            file=sys.stderr,
        )
        return 1
    finally:
        logging.shutdown()
        if not keep_log:
            log.unlink(missing_ok=True)
    report(args, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
