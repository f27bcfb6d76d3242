"""Fuzz the action parser and env.step with random and mutated turns (lone surrogates, zero-width and
bidi characters, combining marks, fullwidth letters, deeply repeated tags); prints the failure
count (must be 0). A step that raises, or returns text that cannot be encoded as UTF-8, fails.

    python benchmarks/fuzz_actions.py [--n 100000] [--seed 0] [--out runs/fuzz_actions.json]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import traceback
from pathlib import Path

from medr3_env import MedR3Env
from medr3_env.testing import FUZZ_TAGS, FUZZ_TEMPLATES, FUZZ_WORDS

VOCABULARY = FUZZ_TAGS + FUZZ_WORDS


def random_action(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return "".join(rng.choice(VOCABULARY) for _ in range(rng.randint(0, 40)))
    if roll < 0.7:
        base = rng.choice(FUZZ_TEMPLATES)
        chars = list(base)
        for _ in range(rng.randint(1, 6)):  # mutate: delete, duplicate or insert
            i = rng.randrange(len(chars) + 1)
            op = rng.random()
            if op < 0.33 and chars:
                del chars[min(i, len(chars) - 1)]
            elif op < 0.66:
                chars.insert(i, rng.choice(VOCABULARY))
            else:
                chars.insert(
                    i, chr(rng.randint(0, 0x2FFFF)) if rng.random() < 0.5 else rng.choice("<>/")
                )
        return "".join(chars)  # lone surrogates included: they must not crash a step either
    if roll < 0.8:
        unit = rng.choice(
            [
                "<search>",
                "x",
                "<answer>A</answer>",
                "🩺",
                "<think>",
                "<think>a</think>",
                "<",
                "\udc80",
                "\u200b",
                "＜",
                "<a ",
                "a\u0301",
            ]
        )
        return (unit * rng.randint(1, 20_000))[:65_536]
    return (
        "".join(chr(rng.randint(1, 0xFFFF)) for _ in range(rng.randint(0, 200)))
        .encode("utf-8", "ignore")
        .decode()
    )


ADVERSARIAL_UNITS = (
    "<think>",
    "</think>",
    "<think>a</think>",
    "<think></think>",
    "<",
    "\uff1c",
    "<a ",
    "<x>",
    "<5>",
    "< ",
    "<b>a",
    "\uff1c\uff54\uff48\uff49\uff4e\uff4b\uff1e",
    "<search>",
    "<answer>A</answer>",
    "\u200b",
    "\udc80",
    "a\u0301",
    "<inf",
    "< / think",
    "<think>a</think><\u200b\u200bb>",
    "\u0456nformation ",
)


def adversarial_parse_times() -> list[dict[str, object]]:
    """Best-of-5 parse time of each unit repeated up to the action limit (and with an answer):
    CPU time of the parsing thread (what the parser costs) and wall time (what a busy machine
    adds)."""
    from medr3_env.actions import MAX_ACTION_CHARS

    texts = []
    for unit in ADVERSARIAL_UNITS:
        for suffix in ("", "<answer>A</answer>"):
            text = (unit * (MAX_ACTION_CHARS // len(unit)))[: MAX_ACTION_CHARS - len(suffix)]
            texts.append((repr(unit) + (" + answer" if suffix else ""), text + suffix))
    for size in (1, 240, 5000):  # a long "<" run with no ">" and one huge fake tag body
        texts.append((f"'<' + 'x' * {size}", ("<" + "x" * size) * (MAX_ACTION_CHARS // (size + 1))))
    rows = []
    for name, text in texts:
        cpu, wall = _timed(text)
        rows.append({"input": name, "chars": len(text), "cpu_ms": cpu, "wall_ms": wall})
    return sorted(rows, key=lambda r: -float(r["cpu_ms"]))  # type: ignore[arg-type]


def _timed(text: str) -> tuple[float, float]:
    from medr3_env.actions import parse_action

    cpu, wall = [], []
    for _ in range(5):
        started_cpu, started = time.thread_time(), time.perf_counter()
        parse_action(text)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return round(min(cpu) * 1e3, 2), round(min(wall) * 1e3, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/fuzz_actions.json"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    env = MedR3Env(max_turns=6)
    failures: list[str] = []
    steps = 0
    started = time.perf_counter()
    env.reset(seed=args.seed)
    for _ in range(args.n):
        action = random_action(rng)
        before = env._turns[-1].index if env._turns else 0
        try:
            obs, reward, terminated, truncated, info = env.step(action)
            steps += 1
            if not (isinstance(obs, str) and math.isfinite(reward) and info["turn"] == before + 1):
                failures.append(f"bad step result for {action[:80]!r}")
            # Everything a step returns must be loggable as UTF-8 (JSONL trajectories, tokenizers).
            json.dumps([obs, info["messages"]], ensure_ascii=False).encode("utf-8")
            if terminated or truncated:
                env.reset(seed=rng.randint(0, 10**6))
        except Exception:  # every exception is a failure to report
            failures.append(f"{action[:80]!r}: {traceback.format_exc(limit=2)}")
            env.reset(seed=rng.randint(0, 10**6))
    elapsed = time.perf_counter() - started
    parse_times = adversarial_parse_times()
    worst = parse_times[0]
    print(
        f"slowest adversarial parse: {worst['cpu_ms']} ms CPU ({worst['wall_ms']} ms wall) for "
        f"{worst['input']} x {worst['chars']} chars"
    )
    result = {
        "slowest_parse": worst,
        "parse_times": parse_times,
        "actions": args.n,
        "steps": steps,
        "failures": len(failures),
        "seconds": round(elapsed, 1),
        "steps_per_second": round(steps / elapsed, 1),
        "examples": failures[:10],
    }
    print(
        f"fuzzed {args.n} actions in {elapsed:.1f}s ({steps / elapsed:,.0f} steps/s): {len(failures)} failures"
    )
    for failure in failures[:10]:
        print(failure)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
