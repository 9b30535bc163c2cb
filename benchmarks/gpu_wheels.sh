#!/usr/bin/env bash
# Run here (a machine that reaches PyPI), before benchmarks/gpu_check.sh goes to a GPU machine that
# reaches nothing: downloads the wheels it lacks (benchmarks/gpu_wheels.txt) into .whl/ (git-ignored
# through .git/info/exclude, so it travels with the working tree).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >> .git/info/exclude
grep -v '^#' benchmarks/gpu_wheels.txt | xargs python3 -m pip download --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform any -d .whl
# omegaconf's parser runtime exists only as a (pure-Python) source archive
python3 -m pip download --no-deps --no-binary=:all: antlr4-python3-runtime==4.9.3 -d .whl
du -sh .whl
