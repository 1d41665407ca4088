from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("opendata", "0005_cadastral")]

    operations = [
        migrations.AddField(
            model_name="locationline",
            name="attributes",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Extra facts from the source (road class, ref, lanes, width, railway usage).",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="locationline",
            name="kind",
            field=models.CharField(
                choices=[
                    ("primary_road", "primary road"),
                    ("trunk_road", "trunk road"),
                    ("motorway", "motorway"),
                    ("railway", "railway line"),
                    ("street", "street centreline (secondary, tertiary, residential...)"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="locationline",
            name="source_id",
            field=models.CharField(help_text="e.g. OSM way id or the two NMBS station ids.", max_length=64),
        ),
    ]
