import django.core.validators
from django.db import migrations, models

PROVENANCE_HELP = (
    "Which source and vintage gave each group of figures, e.g. "
    "{'population': {'source': 'statbel-population', 'vintage': '2020'}, 'income': {...}}."
)


class Migration(migrations.Migration):
    dependencies = [("opendata", "0006_location")]

    operations = [
        migrations.AddField(
            model_name="municipalitystatistic",
            name="provenance",
            field=models.JSONField(blank=True, help_text=PROVENANCE_HELP, null=True),
        ),
        migrations.AddField(
            model_name="sectorstatistic",
            name="provenance",
            field=models.JSONField(blank=True, help_text=PROVENANCE_HELP, null=True),
        ),
        migrations.AlterField(
            model_name="municipalitystatistic",
            name="source",
            field=models.CharField(
                help_text="The connector that last wrote figures to the row.", max_length=50
            ),
        ),
        migrations.AlterField(
            model_name="sectorstatistic",
            name="source",
            field=models.CharField(
                help_text="The connector that last wrote figures to the row.", max_length=50
            ),
        ),
        migrations.AlterField(
            model_name="statisticalsector",
            name="code",
            field=models.CharField(
                help_text="9-character Statbel code (44021A00-).",
                max_length=9,
                unique=True,
                validators=[
                    django.core.validators.RegexValidator(
                        "^\\d{5}[A-Z0-9]{3}[A-Z0-9-]$",
                        "A statistical sector code has 9 characters: the 5-digit NIS code, then 4 letters or "
                        "digits, e.g. 44021A00-, 11002F6MJ or 11001ZZZZ (the last character may be -).",
                    )
                ],
            ),
        ),
    ]
