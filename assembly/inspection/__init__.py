"""Inspecting runs: replay, view-as, check, rerun/fork/resume, the HTML report, the terminal.

Everything here reads a run through the one transcript reader and recomputes
figures with the same pure functions the live run used. (Named `inspection`, not
`inspect`, so that it never shadows the standard library's module.)
"""
