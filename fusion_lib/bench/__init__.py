"""Benchmarks whose stored results the chapters show (run them with
`python -m fusion_lib.bench.NAME`).
"""
