#!/usr/bin/env python3
"""Fix one vendor's column quirks before nexusml engineers features.

This vendor's CMMS export names two columns its own way ("Asset Description", "Mfr"),
writes costs as text ("$3,950") and unknown service lives as words ("N/A", "unknown",
"TBD"). The step renames the columns to the ones `dags/features.toml` reads (without
it, training fails for want of `manufacturer`, and would silently drop the
descriptions), writes costs as plain numbers and leaves unknown service lives empty.

Run by `dags/train_vendor.toml` as a `cmd` node:

    run = ["python3", "../examples/vendor_clean.py", "{in.raw}", "{out.clean}"]

Only the standard library: the table arrives as CSV (every column text) and leaves as
CSV. With pandas, `pd.read_csv(path, dtype=str, keep_default_na=False)` reads it the
same way, and `{in.raw:arrow}` / `pd.read_feather` would skip the text parsing.
"""

import csv
import os
import sys

UNKNOWN = {"n/a", "na", "unknown", "tbd", "-", "?"}

# The vendor's column names → the ones nexusml's feature configuration reads.
RENAME = {"Asset Description": "description", "Mfr": "manufacturer"}


def cost(text):
    """`$3,950` → `3950.00`; anything else as written."""
    t = text.strip()
    if t.startswith("$"):
        digits = t[1:].replace(",", "")
        try:
            return f"{float(digits):.2f}", True
        except ValueError:
            return text, False
    return text, False


def main(source, target):
    column = os.environ.get("SERVICE_LIFE_COLUMN", "service_life")
    with open(source, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        fields = [RENAME.get(name, name) for name in header]
        rows = [dict(zip(fields, values)) for values in reader]
    renamed = [f"{a} → {b}" for a, b in zip(header, fields) if a != b]
    if column not in fields:
        sys.exit(f"vendor_clean: {source} has no column {column!r} (columns: {', '.join(fields)})")
    costs = lives = 0
    for row in rows:
        if "initial_cost" in row:
            row["initial_cost"], changed = cost(row["initial_cost"])
            costs += changed
        if row[column].strip().lower() in UNKNOWN:
            row[column] = ""
            lives += 1
    with open(target, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(
        f"vendor_clean: {len(rows)} rows; columns renamed: {', '.join(renamed) or 'none'}; "
        f"{costs} costs written as numbers; {lives} unknown service lives left empty"
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: vendor_clean.py IN.csv OUT.csv")
    main(sys.argv[1], sys.argv[2])
