from django.contrib.postgres.operations import TrigramExtension, UnaccentExtension
from django.db import migrations


class Migration(migrations.Migration):
    """unaccent and pg_trgm: address search ignores accents and case and tolerates small typos."""

    dependencies = [("opendata", "0001_initial")]

    operations = [UnaccentExtension(), TrigramExtension()]
