"""One import namespace: rewards/, corpora/ and agents/ install as medr3_env.* in both editable
and regular (wheel) installs; no generic top-level packages are installed."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_folders_map_into_the_medr3_env_namespace(tmp_path):
    # Run outside the checkout so the repository root is not on sys.path.
    code = (
        "import importlib.util, medr3_env.rewards, medr3_env.corpora, medr3_env.agents;"
        "print(medr3_env.rewards.__file__, medr3_env.corpora.__file__, medr3_env.agents.__file__);"
        "print([importlib.util.find_spec(n) is None for n in ('rewards', 'corpora', 'agents')])"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    files, absent = out.stdout.splitlines()
    parents = [Path(f).parent.name for f in files.split()]
    assert parents == ["rewards", "corpora", "agents"]
    assert absent == "[True, True, True]"


def test_starter_data_is_package_data():
    from medr3_env.corpora.starter import starter_dir

    assert (starter_dir() / "passages" / "card.jsonl").exists()
    assert (starter_dir() / "questions" / "card.jsonl").exists()


@pytest.mark.slow
def test_wheel_installs_only_the_medr3_env_namespace(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("medr3_env-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"medr3_env"}
    for expected in (
        "medr3_env/rewards/answer.py",
        "medr3_env/corpora/starter/passages/card.jsonl",
        "medr3_env/corpora/starter/questions/card.jsonl",
        "medr3_env/agents/__init__.py",
    ):
        assert expected in names
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    code = (
        "import medr3_env, medr3_env.rewards, medr3_env.corpora, gymnasium as gym;"
        "print(medr3_env.rewards.__file__); print(medr3_env.corpora.__file__);"
        "env = gym.make('MedR3-v0'); print(env.reset(seed=0)[1]['item_id'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith(str(target)) and lines[1].startswith(str(target))
