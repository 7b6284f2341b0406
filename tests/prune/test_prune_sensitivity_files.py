"""Sensitivity results read back (``sensitivity.load``) from the JSON and CSV that ``save`` writes."""
import csv
import json

import pytest

from lightjax.prune import sensitivity


def test_load_sensitivity_json_and_csv(tmp_path):
    rows = [dict(group="(none)", ratio=0.0, kept=None, top1=0.9, top5=1.0, loss=0.3,
                 top1_drop=0.0),
            dict(group="unit1/pw", ratio=0.5, kept=4, top1=0.85, top5=1.0, loss=0.4,
                 top1_drop=0.05)]
    (tmp_path / "sensitivity.json").write_text(json.dumps(rows))
    with open(tmp_path / "sensitivity.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert sensitivity.load(tmp_path) == rows  # the directory: its sensitivity.json
    assert sensitivity.load(tmp_path / "sensitivity.csv") == rows
    with pytest.raises(ValueError, match="no sensitivity results"):
        sensitivity.load(tmp_path / "missing")
