from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("opendata", "0006_location")]

    operations: list[migrations.operations.base.Operation] = []
