"""Convert French DVF deed extracts (as in ../shared/data/sales/dvf_lyon_apartments_2014_2018) to the
canonical sales CSV of `manage.py import_sales`.

    python scripts/dvf_to_sales_csv.py ../shared/data/sales/dvf_lyon_apartments_2014_2018 > var/dvf_lyon.csv
    python manage.py import_sales var/dvf_lyon.csv --source dvf-lyon
    python manage.py backtest --split-date 2017-01-01 --source dvf-lyon

DVF lists a multi-lot deed once per lot, each row repeating the deed's whole price. Rows are grouped
into deeds by (date_mutation, valeur_fonciere, code_postal); a deed with several lots sells them
together (block or investor sales) and its price per dwelling is unknown, so, as IAAO ratio studies
exclude multi-parcel sales, only single-lot deeds are written. The counts go to stderr.
Data: DGFiP / Etalab, Licence Ouverte 2.0.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pandas as pd

DEED = ["date_mutation", "valeur_fonciere", "code_postal"]


def main(folder: str) -> int:
    files = sorted(Path(folder).glob("*.csv"))
    if not files:
        print(f"no CSV files in {folder}", file=sys.stderr)
        return 2
    raw = pd.concat([pd.read_csv(path, index_col=0) for path in files], ignore_index=True)
    lots = raw.groupby(DEED)["surface_reelle_bati"].transform("size")
    single = raw[lots == 1].dropna(subset=["longitude", "latitude"])
    writer = csv.writer(sys.stdout)
    writer.writerow(
        [
            "sale_id",
            "sale_date",
            "price_eur",
            "latitude",
            "longitude",
            "property_type",
            "living_area_m2",
            "address",
        ]
    )
    for i, row in enumerate(single.itertuples(index=False)):
        writer.writerow(
            [
                f"dvf-{i}",
                row.date_mutation,
                row.valeur_fonciere,
                row.latitude,
                row.longitude,
                "apartment",
                row.surface_reelle_bati,
                f"{int(row.code_postal)} Lyon",
            ]
        )
    print(
        f"{len(raw)} lot rows, {int((lots > 1).sum())} rows of multi-lot deeds dropped, "
        f"{len(single)} single-lot sales with coordinates written",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/sales/dvf_lyon_apartments_2014_2018"))
