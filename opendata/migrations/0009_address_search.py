"""Street search as notaries type: accents and case ignored, small typos tolerated (pg_trgm).

``unaccent()`` cannot be indexed (it is only STABLE: its dictionary could change), so an IMMUTABLE
wrapper with the dictionary named explicitly, the usual PostgreSQL idiom, normalises street names;
trigram GIN indexes on the normalised Dutch and French names serve both prefix (LIKE 'kerk%') and
similarity ('kerkstrat' finds 'Kerkstraat') searches.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION notary_fold(text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;
"""

INDEXES = """
CREATE INDEX opendata_address_street_nl_fold ON opendata_address USING gin (notary_fold(street_nl) gin_trgm_ops);
CREATE INDEX opendata_address_street_fr_fold ON opendata_address USING gin (notary_fold(street_fr) gin_trgm_ops);
"""

DROP = """
DROP INDEX IF EXISTS opendata_address_street_nl_fold;
DROP INDEX IF EXISTS opendata_address_street_fr_fold;
DROP FUNCTION IF EXISTS notary_fold(text);
"""


class Migration(migrations.Migration):
    dependencies = [("opendata", "0008_capakey_collation_c")]

    operations = [migrations.RunSQL(FUNCTION + INDEXES, reverse_sql=DROP)]
