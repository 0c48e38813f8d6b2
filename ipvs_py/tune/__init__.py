"""The conn_lfactor tuning toolkit: replay a workload at each setting,
measure the conn table, plot, and recommend (``ipvs-py tune``).

    rows = sweep(batch, rules_text, settings_for(range(-8, 9)))
    rec = recommend(rows, memory_budget=64 << 20)

See docs/tuning.md for a worked example.
"""
from .plots import write_plots
from .recommend import (Recommendation, apply_lines, pareto_front,
                        points_of, recommend)
from .report import rich_table, write_csv, write_json
from .measure import LFACTORS, Row, Setting, replay_setting, settings_for, sweep

__all__ = ["sweep", "replay_setting", "settings_for", "Setting", "Row",
           "LFACTORS", "recommend", "Recommendation", "pareto_front",
           "points_of", "apply_lines", "rich_table", "write_csv",
           "write_json", "write_plots"]
