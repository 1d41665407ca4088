from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("opendata", "0004_refresh_http_validators")]

    operations: list[migrations.operations.base.Operation] = []
