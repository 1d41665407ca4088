from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("opendata", "0005_cadastral")]

    operations: list[migrations.operations.base.Operation] = []
