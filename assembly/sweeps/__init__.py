"""Sweeps: a grid of overrides times seeds, run on an executor, summarised with intervals.

`sweep` (spec, expansion, running and post-processing), `executors` (local, process,
Ray), `stats` (Wilson intervals and cell summaries), `plots` (sweep figures) and
`tables` (`load_runs`, `load_rounds`).
"""
