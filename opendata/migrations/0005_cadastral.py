from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("opendata", "0004_refresh_http_validators")]

    operations = [
        migrations.AddField(
            model_name="parcel",
            name="source_id",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text=(
                    "Identifier in the source (CadGIS OBJECTID/RecId, GRB OIDN); empty when it has none."
                ),
                max_length=64,
            ),
        ),
        migrations.AddField(
            model_name="building",
            name="volume_m3",
            field=models.FloatField(
                blank=True,
                help_text="Footprint area times height, in cubic metres (from the heights).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="building",
            name="height_source",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text="How the height was measured, e.g. 'DSM-DTM median, dsm.tif'; empty when unknown.",
                max_length=100,
            ),
        ),
        migrations.AddField(
            model_name="building",
            name="kind",
            field=models.CharField(
                blank=True,
                db_default="",
                help_text="Building kind as the source says it (CadGIS Type CL/ON/OO/UN, GRB LBLTYPE).",
                max_length=50,
            ),
        ),
    ]
