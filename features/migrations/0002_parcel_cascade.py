from django.db import migrations

# The database deletes a parcel's features with the parcel (connectors swap parcels in with plain SQL
# DELETEs, which Django's emulated CASCADE never sees), instead of Django's deferred NO ACTION key.
CASCADE_SQL = """
DO $$
DECLARE name text;
BEGIN
    SELECT conname INTO name FROM pg_constraint
    WHERE conrelid = 'features_parcelfeatures'::regclass AND contype = 'f';
    EXECUTE format('ALTER TABLE features_parcelfeatures DROP CONSTRAINT %I', name);
    EXECUTE format(
        'ALTER TABLE features_parcelfeatures ADD CONSTRAINT %I FOREIGN KEY (parcel_id) '
        'REFERENCES opendata_parcel (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED', name);
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("features", "0001_initial")]

    operations = [migrations.RunSQL(CASCADE_SQL, migrations.RunSQL.noop)]
