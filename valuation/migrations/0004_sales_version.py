from django.db import migrations

# One row counts every change to the sales table. A statement-level trigger bumps it on INSERT, UPDATE,
# DELETE and TRUNCATE, whatever wrote them (ORM, COPY, raw SQL), so a process that keeps the sales in
# memory for fast valuations knows with one cheap query whether its copy is current.
FORWARD = """
create table valuation_salesversion (id smallint primary key check (id = 1), version bigint not null);
insert into valuation_salesversion values (1, 0);
create function valuation_sales_version_bump() returns trigger language plpgsql as $$
begin
    update valuation_salesversion set version = version + 1 where id = 1;
    return null;
end $$;
create trigger valuation_sale_changed after insert or update or delete on valuation_sale
    for each statement execute function valuation_sales_version_bump();
create trigger valuation_sale_truncated after truncate on valuation_sale
    for each statement execute function valuation_sales_version_bump();
"""
BACKWARD = """
drop trigger if exists valuation_sale_changed on valuation_sale;
drop trigger if exists valuation_sale_truncated on valuation_sale;
drop function if exists valuation_sales_version_bump();
drop table if exists valuation_salesversion;
"""


class Migration(migrations.Migration):
    dependencies = [("valuation", "0003_model_registry_and_valuations")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
